// WebSocket load client for bench/websocket.sh: one user's sockets, opened
// and written to on one thread, read on another by a plain epoll loop, so
// the client's own cost per frame stays small next to the server's. Latency
// is the receive time minus the event's `time` (set just before commit,
// millisecond precision), on the same clock.
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

#include <atomic>
#include <mutex>
#include <thread>

#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

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

// The receiving side, once every socket is open: the sockets' descriptors
// on one epoll loop of its own thread, frames parsed by hand (a server's
// frames are never masked). Beast's read path cost the client about 7 us
// per frame, as much as half the server's own cost, on the same two cores.
class receiver {
 public:
  explicit receiver(std::vector<int> fds) : fds_(std::move(fds)), pending_(fds_.size()) {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    for (std::size_t i = 0; i < fds_.size(); ++i) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = i;
      epoll_ctl(ep_, EPOLL_CTL_ADD, fds_[i], &ev);
    }
    thread_ = std::thread([this] { loop(); });
  }
  ~receiver() {
    stop_ = true;
    thread_.join();
    for (auto fd : fds_) {
      ::close(fd);
    }
    ::close(ep_);
  }
  std::size_t frames() const { return frames_.load(); }
  std::chrono::steady_clock::time_point last_frame() const {
    return std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(last_frame_.load()));
  }
  // Restarts the count and the latencies (between the phases).
  void reset() {
    std::lock_guard lock(mu_);
    latency_ms_.clear();
    frames_ = 0;
  }
  std::vector<double> latencies() {
    std::lock_guard lock(mu_);
    return latency_ms_;
  }

 private:
  void loop() {
    std::vector<epoll_event> evs(256);
    std::vector<char> buf(1 << 16);
    while (!stop_) {
      int n = epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), 50);
      for (int k = 0; k < n; ++k) {
        auto i = evs[k].data.u64;
        auto got = ::read(fds_[i], buf.data(), buf.size());
        if (got <= 0) {
          epoll_ctl(ep_, EPOLL_CTL_DEL, fds_[i], nullptr);
          continue;
        }
        auto& p = pending_[i];
        p.append(buf.data(), static_cast<std::size_t>(got));
        consume(fds_[i], p);
      }
    }
  }

  // Takes every whole frame off the front of `p`.
  void consume(int fd, std::string& p) {
    std::size_t at = 0;
    for (;;) {
      if (p.size() - at < 2) {
        break;
      }
      auto b0 = static_cast<unsigned char>(p[at]);
      auto b1 = static_cast<unsigned char>(p[at + 1]);
      std::size_t head = 2;
      std::uint64_t len = b1 & 0x7f;
      if (len == 126) {
        head = 4;
      } else if (len == 127) {
        head = 10;
      }
      if (p.size() - at < head) {
        break;
      }
      if (head > 2) {
        len = 0;
        for (std::size_t j = 2; j < head; ++j) {
          len = (len << 8) | static_cast<unsigned char>(p[at + j]);
        }
      }
      if (p.size() - at < head + len) {
        break;
      }
      std::string_view payload(p.data() + at + head, len);
      auto opcode = b0 & 0x0f;
      if (opcode == 0x1 && (b0 & 0x80) != 0) {
        on_text(payload);
      } else if (opcode == 0x9) {
        pong(fd, payload);
      }
      at += head + len;
    }
    p.erase(0, at);
  }

  void on_text(std::string_view frame) {
    if (frame.find("\"sequence\"") == std::string_view::npos) {
      return;  // not an event
    }
    double now = 0;
    now_ms_fraction(now);
    auto t = event_time_ms(frame);
    if (t >= 0) {
      std::lock_guard lock(mu_);
      latency_ms_.push_back(now - static_cast<double>(t));
    }
    last_frame_ = std::chrono::steady_clock::now().time_since_epoch().count();
    ++frames_;
  }

  // A client's frames are masked; a zero mask leaves the payload as it is.
  static void pong(int fd, std::string_view payload) {
    std::string f;
    f.push_back(static_cast<char>(0x8a));
    f.push_back(static_cast<char>(0x80 | payload.size()));
    f.append(4, '\0');
    f.append(payload);
    auto ignored = ::write(fd, f.data(), f.size());
    (void)ignored;
  }

  std::vector<int> fds_;
  std::vector<std::string> pending_;
  int ep_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> frames_{0};
  std::atomic<std::chrono::steady_clock::rep> last_frame_{0};
  std::mutex mu_;
  std::vector<double> latency_ms_;
  std::thread thread_;
};

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

asio::awaitable<void> wait_for(const receiver& rx, std::size_t frames, std::chrono::steady_clock::duration limit) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (rx.frames() < frames && std::chrono::steady_clock::now() < deadline) {
    t.expires_after(200us);
    co_await t.async_wait(use_tuple);
  }
}

asio::awaitable<void> run(int port, std::string token, std::string mode, std::vector<int> args) {
  auto ex = co_await asio::this_coro::executor;
  tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port));
  auto n = static_cast<std::size_t>(args.at(0));
  std::vector<int> fds;
  for (std::size_t i = 0; i < n; ++i) {
    auto ws = co_await open_socket(ep, token);
    fds.push_back(beast::get_lowest_layer(*ws).socket().release());
  }
  receiver rx(std::move(fds));
  beast::tcp_stream writer(ex);
  co_await writer.async_connect(ep, asio::use_awaitable);
  asio::steady_timer pause(ex, 500ms);
  co_await pause.async_wait(use_tuple);
  rx.reset();

  char line[512];
  if (mode == "fanout") {
    auto changes = static_cast<std::size_t>(args.at(1));
    std::vector<double> all;
    for (std::size_t c = 0; c < changes; ++c) {
      auto start = std::chrono::steady_clock::now();
      co_await create_task(writer, token);
      co_await wait_for(rx, n * (c + 1), 10s);
      all.push_back(std::chrono::duration<double, std::milli>(rx.last_frame() - start).count());
    }
    std::snprintf(line, sizeof line,
                  R"({"phase": "fanout", "client": "epoll", "sockets": %zu, "changes": %zu, "frames": %zu, )"
                  R"("frame_p50_ms": %.2f, "frame_p99_ms": %.2f, "all_sockets_p50_ms": %.2f, "all_sockets_max_ms": %.2f})",
                  n, changes, rx.frames(), pct(rx.latencies(), 0.5), pct(rx.latencies(), 0.99), pct(all, 0.5),
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
    co_await wait_for(rx, expected, 10s);
    auto elapsed = std::chrono::duration<double>(rx.last_frame() - start).count();
    auto cpu = cpu_seconds() - cpu_start;
    std::snprintf(line, sizeof line,
                  R"({"phase": "rate", "client": "epoll", "sockets": %zu, "writes_per_s": %d, "seconds": %d, )"
                  R"("frames": %zu, "frames_expected": %zu, "frames_per_s": %.0f, "p50_ms": %.2f, "p99_ms": %.2f, )"
                  R"("client_cpu_us_per_frame": %.1f})",
                  n, rate, seconds, rx.frames(), expected, static_cast<double>(rx.frames()) / elapsed,
                  pct(rx.latencies(), 0.5), pct(rx.latencies(), 0.99),
                  rx.frames() > 0 ? cpu * 1e6 / static_cast<double>(rx.frames()) : 0.0);
  }
  std::cout << line << std::endl;
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
