# syntax=docker/dockerfile:1
# todo-server image: built with the project's own scripts on Debian bookworm,
# shipped on bookworm-slim with only the binary and the shared libraries it
# links. The SQL migrations are compiled into the binary and applied by it at
# start, so the runtime stage needs no copy of migrations/.

FROM debian:bookworm-slim AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
# The package list first, so the toolchain layer is reused until it changes.
COPY scripts/lib.sh scripts/lib.sh
RUN . scripts/lib.sh \
 && ensure_packages \
 && rm -rf /var/lib/apt/lists/*
COPY CMakeLists.txt ./
COPY cmake cmake
COPY include include
COPY src src
COPY modules modules
COPY migrations migrations
# Embedded as JSON (GET /openapi.json); converted by cmake/embed_openapi.py.
COPY docs/openapi.yaml docs/openapi.yaml
# CMakeLists.txt adds bench/ (its targets are not built by default).
COPY bench bench
RUN --mount=type=cache,target=/root/.cache/ccache \
    . scripts/lib.sh \
 && build /src/build-image -DTODO_BUILD_TESTS=OFF \
 && strip /src/build-image/todo-server
# The Debian packages that own the libraries the binary links, so the runtime
# stage installs exactly those and nothing the build needed.
RUN ldd /src/build-image/todo-server \
  | awk '/=> \//{print $3}' \
  | while read -r lib; do dpkg -S "$lib" 2>/dev/null || dpkg -S "/usr$lib"; done \
  | cut -d: -f1 | sort -u >/src/runtime-packages \
 && test -s /src/runtime-packages

FROM debian:bookworm-slim AS runtime
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
COPY --from=build /src/runtime-packages /tmp/runtime-packages
# tzdata: time zones are validated against the system database.
# ca-certificates: TLS to managed PostgreSQL and Kafka.
RUN apt-get update -qq \
 && xargs -a /tmp/runtime-packages apt-get install -y -qq --no-install-recommends tzdata ca-certificates \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages \
 && groupadd --system --gid 10001 todo \
 && useradd --system --uid 10001 --gid todo --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin todo
COPY --from=build /src/build-image/todo-server /usr/local/bin/todo-server
USER 10001:10001
ENV PORT=8080 BIND_ADDRESS=0.0.0.0
EXPOSE 8080
# bash's /dev/tcp: the image carries no HTTP client.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${PORT} && printf 'GET /health HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -c 12 <&3 | grep -q ' 200'"]
# SIGTERM drains: stop accepting, finish requests, close WebSockets, flush Kafka.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/todo-server"]
