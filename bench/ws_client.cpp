// WebSocket load client for bench/websocket.sh: one user's sockets on one
// thread, so the client's own cost per frame stays small next to the
// server's. Latency is the receive time minus the event's `time` (set just
// before commit, millisecond precision), on the same clock.
//
// usage: ws_client PORT TOKEN fanout SOCKETS CHANGES
//          each change written alone, then waited for on every socket
//        ws_client PORT TOKEN rate SOCKETS WRITES_PER_S SECONDS
//          writes at a steady rate; frames delivered per second in total
// Prints one JSON line.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <sys/resource.h>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

struct stats {
  std::vector<double> latency_ms;
  std::size_t frames = 0;
  std::chrono::steady_clock::time_point last_frame;
};

// Days since 1970-01-01 of a civil date (H. Hinnant's days_from_civil).
long long days_from_civil(long long y, unsigned m, unsigned d) {
  y -= m <= 2;
  const long long era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<long long>(doe) - 719468;
}

// "time":"2026-12-02T04:05:06.123Z" as unix milliseconds, or -1. By hand:
// the client parses every frame, and must cost little next to the server.
long long event_time_ms(std::string_view frame) {
  constexpr std::string_view key = "\"time\":\"";
  auto at = frame.find(key);
  if (at == std::string_view::npos || frame.size() < at + key.size() + 23) {
    return -1;
  }
  const char* p = frame.data() + at + key.size();
  auto num = [p](int from, int len) {
    long long v = 0;
    for (int i = from; i < from + len; ++i) {
      v = v * 10 + (p[i] - '0');
    }
    return v;
  };
  auto days = days_from_civil(num(0, 4), static_cast<unsigned>(num(5, 2)), static_cast<unsigned>(num(8, 2)));
  long long ms = ((days * 24 + num(11, 2)) * 60 + num(14, 2)) * 60 + num(17, 2);
  ms *= 1000;
  if (p[19] == '.') {
    ms += num(20, 3);
  }
  return ms;
}

long long now_ms_fraction(double& out) {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  out = std::chrono::duration<double, std::milli>(now).count();
  return static_cast<long long>(out);
}

asio::awaitable<void> reader(std::shared_ptr<websocket::stream<beast::tcp_stream>> ws, stats& st) {
  beast::flat_buffer buffer;
  for (;;) {
    buffer.clear();
    auto [ec, n] = co_await ws->async_read(buffer, use_tuple);
    if (ec) {
      co_return;
    }
    auto data = buffer.cdata();
    std::string_view frame(static_cast<const char*>(data.data()), data.size());
    if (frame.find("\"sequence\"") == std::string_view::npos) {
      continue;  // not an event
    }
    double now = 0;
    now_ms_fraction(now);
    auto t = event_time_ms(frame);
    if (t >= 0) {
      st.latency_ms.push_back(now - static_cast<double>(t));
    }
    ++st.frames;
    st.last_frame = std::chrono::steady_clock::now();
  }
}

asio::awaitable<std::shared_ptr<websocket::stream<beast::tcp_stream>>> open_socket(tcp::endpoint ep, std::string token) {
  auto ex = co_await asio::this_coro::executor;
  auto ws = std::make_shared<websocket::stream<beast::tcp_stream>>(ex);
  co_await beast::get_lowest_layer(*ws).async_connect(ep, asio::use_awaitable);
  beast::get_lowest_layer(*ws).expires_never();
  ws->set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
  co_await ws->async_handshake("127.0.0.1", "/api/v1/ws?access_token=" + token, asio::use_awaitable);
  co_return ws;
}

// One POST /api/v1/tasks on a kept-alive connection.
asio::awaitable<void> create_task(beast::tcp_stream& http_stream, const std::string& token) {
  http::request<http::string_body> req{http::verb::post, "/api/v1/tasks", 11};
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::authorization, "Bearer " + token);
  req.set(http::field::content_type, "application/json");
  req.body() = R"({"title":"bench"})";
  req.prepare_payload();
  co_await http::async_write(http_stream, req, asio::use_awaitable);
  beast::flat_buffer b;
  http::response<http::string_body> res;
  co_await http::async_read(http_stream, b, res, asio::use_awaitable);
  if (res.result() != http::status::created) {
    std::cerr << "create: " << res.result_int() << " " << res.body() << "\n";
    std::exit(1);
  }
}

// This process's CPU time, user and system.
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return tv(u.ru_utime) + tv(u.ru_stime);
}

double pct(std::vector<double> v, double p) {
  if (v.empty()) {
    return -1;
  }
  std::sort(v.begin(), v.end());
  auto i = std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())));
  return std::round(v[i] * 100) / 100;
}

asio::awaitable<void> wait_for(stats& st, std::size_t frames, std::chrono::steady_clock::duration limit) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (st.frames < frames && std::chrono::steady_clock::now() < deadline) {
    t.expires_after(200us);
    co_await t.async_wait(use_tuple);
  }
}

asio::awaitable<void> run(int port, std::string token, std::string mode, std::vector<int> args) {
  auto ex = co_await asio::this_coro::executor;
  tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port));
  auto n = static_cast<std::size_t>(args.at(0));
  stats st;
  std::vector<std::shared_ptr<websocket::stream<beast::tcp_stream>>> socks;
  for (std::size_t i = 0; i < n; ++i) {
    socks.push_back(co_await open_socket(ep, token));
    asio::co_spawn(ex, reader(socks.back(), st), asio::detached);
  }
  beast::tcp_stream writer(ex);
  co_await writer.async_connect(ep, asio::use_awaitable);
  asio::steady_timer pause(ex, 500ms);
  co_await pause.async_wait(use_tuple);
  st.frames = 0;
  st.latency_ms.clear();

  char line[512];
  if (mode == "fanout") {
    auto changes = static_cast<std::size_t>(args.at(1));
    std::vector<double> all;
    for (std::size_t c = 0; c < changes; ++c) {
      auto start = std::chrono::steady_clock::now();
      co_await create_task(writer, token);
      co_await wait_for(st, n * (c + 1), 10s);
      all.push_back(std::chrono::duration<double, std::milli>(st.last_frame - start).count());
    }
    std::snprintf(line, sizeof line,
                  R"({"phase": "fanout", "client": "beast", "sockets": %zu, "changes": %zu, "frames": %zu, )"
                  R"("frame_p50_ms": %.2f, "frame_p99_ms": %.2f, "all_sockets_p50_ms": %.2f, "all_sockets_max_ms": %.2f})",
                  n, changes, st.frames, pct(st.latency_ms, 0.5), pct(st.latency_ms, 0.99), pct(all, 0.5),
                  pct(all, 1.0));
  } else {
    auto rate = args.at(1);
    auto seconds = args.at(2);
    auto writes = static_cast<std::size_t>(rate) * static_cast<std::size_t>(seconds);
    auto start = std::chrono::steady_clock::now();
    auto cpu_start = cpu_seconds();
    asio::steady_timer pace(ex);
    for (std::size_t i = 0; i < writes; ++i) {
      pace.expires_at(start + std::chrono::microseconds(1'000'000 * i / static_cast<std::size_t>(rate)));
      co_await pace.async_wait(use_tuple);
      co_await create_task(writer, token);
    }
    auto expected = writes * n;
    co_await wait_for(st, expected, 10s);
    auto elapsed = std::chrono::duration<double>(st.last_frame - start).count();
    auto cpu = cpu_seconds() - cpu_start;
    std::snprintf(line, sizeof line,
                  R"({"phase": "rate", "client": "beast", "sockets": %zu, "writes_per_s": %d, "seconds": %d, )"
                  R"("frames": %zu, "frames_expected": %zu, "frames_per_s": %.0f, "p50_ms": %.2f, "p99_ms": %.2f, )"
                  R"("client_cpu_us_per_frame": %.1f})",
                  n, rate, seconds, st.frames, expected, static_cast<double>(st.frames) / elapsed,
                  pct(st.latency_ms, 0.5), pct(st.latency_ms, 0.99),
                  st.frames > 0 ? cpu * 1e6 / static_cast<double>(st.frames) : 0.0);
  }
  std::cout << line << std::endl;
  for (auto& ws : socks) {
    beast::get_lowest_layer(*ws).socket().close();
  }
  co_return;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::cerr << "usage: ws_client PORT TOKEN fanout SOCKETS CHANGES | rate SOCKETS WRITES_PER_S SECONDS\n";
    return 2;
  }
  std::vector<int> args;
  for (int i = 4; i < argc; ++i) {
    args.push_back(std::atoi(argv[i]));
  }
  asio::io_context io(1);
  int rc = 0;
  asio::co_spawn(io, run(std::atoi(argv[1]), argv[2], argv[3], args), [&](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        std::cerr << "ws_client: " << x.what() << "\n";
      }
      rc = 1;
    }
    io.stop();
  });
  io.run();
  return rc;
}
