// Outbound webhooks and mail against real receivers on loopback: an HTTP
// receiver and an SMTP server (aiosmtpd), Python processes from tests/support.
#include "pg_fixture.hpp"  // test::run
#include "todo/outbound.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>
#include <simdjson.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <optional>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

using namespace todo;
namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// The source tree, for the helper scripts: TODO_SOURCE_DIR, else the one
// named in the CMakeCache.txt of the build tree holding this binary.
fs::path source_dir() {
  if (const char* d = std::getenv("TODO_SOURCE_DIR"); d != nullptr && *d != '\0') {
    return d;
  }
  for (auto p = fs::read_symlink("/proc/self/exe").parent_path(); p != p.root_path(); p = p.parent_path()) {
    std::ifstream cache(p / "CMakeCache.txt");
    std::string line;
    const std::string key = "CMAKE_HOME_DIRECTORY:INTERNAL=";
    while (std::getline(cache, line)) {
      if (line.starts_with(key)) {
        return line.substr(key.size());
      }
    }
  }
  throw std::runtime_error("source tree not found: set TODO_SOURCE_DIR");
}

struct temp_dir {
  fs::path path;
  temp_dir() {
    std::string pattern = (fs::temp_directory_path() / "todo-outbound.XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::runtime_error("mkdtemp failed");
    }
    path = pattern;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// A helper script run as `python3 script LOG`; it prints its port first.
// Killed and reaped when it goes out of scope; should this process die
// first, the helper's standard input ends and it exits by itself.
class helper {
 public:
  helper(const std::string& script, const fs::path& log) {
    int fds[2];
    int in[2];
    if (::pipe2(fds, O_CLOEXEC) != 0 || ::pipe2(in, O_CLOEXEC) != 0) {
      throw std::runtime_error("pipe2 failed");
    }
    stdin_ = in[1];
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
    std::string python = "/usr/bin/python3";
    std::string path = (source_dir() / "tests/support" / script).string();
    std::string log_path = log.string();
    char* argv[] = {python.data(), path.data(), log_path.data(), nullptr};
    int rc = ::posix_spawn(&pid_, python.c_str(), &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    ::close(in[0]);
    if (rc != 0) {
      ::close(fds[0]);
      throw std::runtime_error("posix_spawn failed");
    }
    std::string line;
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fds[0], POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) {
        continue;
      }
      char buf[64];
      auto n = ::read(fds[0], buf, sizeof buf);
      if (n <= 0) {
        break;
      }
      line.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    port_ = static_cast<std::uint16_t>(std::atoi(line.c_str()));
    if (port_ == 0) {
      stop();
      throw std::runtime_error(script + " did not report its port");
    }
  }
  ~helper() { stop(); }
  helper(const helper&) = delete;
  helper& operator=(const helper&) = delete;

  std::uint16_t port() const { return port_; }

 private:
  void stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
    if (stdin_ >= 0) {
      ::close(stdin_);
      stdin_ = -1;
    }
  }
  pid_t pid_ = -1;
  int stdin_ = -1;
  std::uint16_t port_ = 0;
};

std::vector<std::string> lines_of(const fs::path& p) {
  std::vector<std::string> out;
  std::ifstream in(p);
  std::string line;
  while (std::getline(in, line)) {
    out.push_back(line);
  }
  return out;
}

struct seen_request {
  std::string method, path, body;
  std::map<std::string, std::string> headers;
  std::int64_t in_flight = 0;  // requests in progress at the receiver, this one included
};

struct seen_mail {
  std::string mail_from, login, raw, subject, body;
  std::vector<std::string> rcpt_tos;
};

std::string text(simdjson::dom::element e) {
  std::string_view s;
  return e.get(s) == simdjson::SUCCESS ? std::string(s) : std::string();
}

std::string without_cr(std::string s) {
  std::erase(s, '\r');
  return s;
}

struct receiver {
  temp_dir dir;
  fs::path log = dir.path / "requests.jsonl";
  helper process{"webhook_receiver.py", log};

  std::string url(const std::string& path, const std::string& scheme = "http") const {
    return scheme + "://127.0.0.1:" + std::to_string(process.port()) + path;
  }

  std::vector<seen_request> requests() const {
    std::vector<seen_request> out;
    simdjson::dom::parser parser;
    for (const auto& line : lines_of(log)) {
      auto doc = parser.parse(line).value();
      seen_request r{text(doc["method"]), text(doc["path"]), text(doc["body"]), {}, doc["in_flight"].get_int64()};
      simdjson::dom::object headers = doc["headers"].get_object().value();
      for (auto [k, v] : headers) {
        r.headers[std::string(k)] = text(v);
      }
      out.push_back(std::move(r));
    }
    return out;
  }
};

struct smtp_sink {
  temp_dir dir;
  fs::path log = dir.path / "mail.jsonl";
  helper process{"smtp_sink.py", log};

  std::string url(const std::string& userinfo = "") const {
    return "smtp://" + userinfo + "127.0.0.1:" + std::to_string(process.port());
  }

  std::vector<seen_mail> messages() const {
    std::vector<seen_mail> out;
    simdjson::dom::parser parser;
    for (const auto& line : lines_of(log)) {
      auto doc = parser.parse(line).value();
      seen_mail m{text(doc["mail_from"]), text(doc["login"]), text(doc["raw"]), text(doc["subject"]),
                  without_cr(text(doc["body"])), {}};
      simdjson::dom::array rcpts = doc["rcpt_tos"].get_array().value();
      for (auto r : rcpts) {
        m.rcpt_tos.push_back(text(r));
      }
      out.push_back(std::move(m));
    }
    return out;
  }
};

outbound::webhook_request insecure(std::string url) {
  return {.url = std::move(url), .headers = {}, .body = R"({"event":"task.created"})", .allow_insecure = true};
}

outbound::mail a_mail(std::string smtp_url) {
  return {.smtp_url = std::move(smtp_url),
          .from = "Todo <noreply@todo.test>",
          .to = "alice@example.test",
          .subject = "Reminder",
          .text = "Hello Alice.\n",
          .message_id = "m-1@todo.test"};
}

// The io_context outlives the sender, which posts completions to it.
struct client {
  asio::io_context io;
  outbound::sender sender;

  explicit client(std::size_t max_parallel = 32) : sender(max_parallel) {}

  outbound::outcome post(outbound::webhook_request r) { return test::run(io, sender.post(std::move(r))); }
  outbound::outcome send(outbound::mail m) { return test::run(io, sender.send(std::move(m))); }
  std::future<outbound::outcome> spawn_post(outbound::webhook_request r) {
    return asio::co_spawn(asio::make_strand(io), sender.post(std::move(r)), asio::use_future);
  }
};

// Runs the io_context until every future is ready.
std::vector<outbound::outcome> await_all(asio::io_context& io, std::vector<std::future<outbound::outcome>>& fs) {
  std::vector<outbound::outcome> out;
  io.restart();
  for (auto& f : fs) {
    while (f.wait_for(0s) != std::future_status::ready) {
      io.run_one_for(10ms);
    }
    out.push_back(f.get());
  }
  return out;
}

}  // namespace

TEST_CASE("a webhook arrives with its headers and body", "[outbound]") {
  receiver rx;
  client s;
  auto r = insecure(rx.url("/hook?token=q-secret"));
  r.headers = {{"x-todo-signature", "sha256=abc123"}, {"x-todo-event", "task.created"}, {"x-empty", ""}};
  r.body = R"({"title":"Grüße ✓","n":1})";
  auto o = s.post(r);
  CHECK(o.ok);
  CHECK(o.status == 200);
  CHECK(o.error.empty());
  auto seen = rx.requests();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].method == "POST");
  CHECK(seen[0].path == "/hook?token=q-secret");
  CHECK(seen[0].body == r.body);
  CHECK(seen[0].headers["content-type"] == "application/json");
  CHECK(seen[0].headers["user-agent"] == "todo-server");
  CHECK(seen[0].headers["x-todo-signature"] == "sha256=abc123");
  CHECK(seen[0].headers["x-todo-event"] == "task.created");
  CHECK(seen[0].headers.contains("x-empty"));
  CHECK_FALSE(seen[0].headers.contains("expect"));
}

TEST_CASE("without allow_insecure nothing reaches a loopback receiver", "[outbound]") {
  receiver rx;
  client s;

  // http:// is refused before any connection.
  outbound::webhook_request plain{.url = rx.url("/x?token=q-secret"), .headers = {}, .body = "{}"};
  auto o = s.post(plain);
  CHECK_FALSE(o.ok);
  CHECK_FALSE(o.retryable);
  CHECK(o.error == "refused: the URL must be an https:// URL");

  // https:// to a loopback literal and to a name resolving to loopback: the
  // address guard refuses at connect, so the receiver sees no connection.
  outbound::webhook_request literal{.url = rx.url("/x?token=q-secret", "https"), .headers = {}, .body = "{}"};
  o = s.post(literal);
  CHECK_FALSE(o.ok);
  CHECK_FALSE(o.retryable);
  CHECK(o.status == 0);
  CHECK(o.error == "refused: is a loopback address (127.0.0.1)");

  outbound::webhook_request named{
      .url = "https://localhost:" + std::to_string(rx.process.port()) + "/x", .headers = {}, .body = "{}"};
  o = s.post(named);
  CHECK_FALSE(o.ok);
  CHECK_FALSE(o.retryable);
  CHECK(o.error.starts_with("refused: resolves to a loopback address ("));

  outbound::webhook_request ftp{.url = "ftp://example.com/x", .headers = {}, .body = "{}"};
  o = s.post(ftp);
  CHECK_FALSE(o.ok);
  CHECK_FALSE(o.retryable);

  CHECK(rx.requests().empty());
}

TEST_CASE("a header with a line break in its value is refused, without its value in the error", "[outbound]") {
  receiver rx;
  client s;
  auto r = insecure(rx.url("/x"));
  r.headers = {{"x-token", "t-secret\r\nx-evil: 1"}};
  auto o = s.post(r);
  CHECK_FALSE(o.ok);
  CHECK_FALSE(o.retryable);
  CHECK(o.error.find("secret") == std::string::npos);
  CHECK(rx.requests().empty());
}

TEST_CASE("redirects are followed as POSTs up to the limit", "[outbound]") {
  receiver rx;
  client s;
  auto r = insecure(rx.url("/redirect/3"));
  r.max_redirects = 3;
  auto o = s.post(r);
  CHECK(o.ok);
  auto seen = rx.requests();
  REQUIRE(seen.size() == 4);
  for (const auto& req : seen) {
    CHECK(req.method == "POST");
    CHECK(req.body == r.body);
  }
  CHECK(seen.back().path == "/redirect/0");

  r.url = rx.url("/redirect/4");
  o = s.post(r);
  CHECK_FALSE(o.ok);
  CHECK_FALSE(o.retryable);
  CHECK(o.status == 302);
  CHECK(o.error == "more than 3 redirects (127.0.0.1)");
  CHECK(rx.requests().size() == 4 + 4);

  r.url = rx.url("/to-ftp");
  o = s.post(r);
  CHECK_FALSE(o.ok);
  CHECK_FALSE(o.retryable);
  CHECK(o.status == 302);
  CHECK(o.error == "redirected to a scheme that is not allowed (127.0.0.1)");
}

// The receiver's own address stands in for a public one; everything else
// is judged by the real guard. So the first hop is allowed, and what a
// redirect leads to is checked when its connection opens.
std::optional<std::string_view> all_but_the_receiver(const webhook::address& a) {
  static const auto receiver_address = webhook::parse_address("127.0.0.1");
  if (a.v6 == receiver_address->v6 && a.bytes == receiver_address->bytes) {
    return std::nullopt;
  }
  return webhook::refusal(a);
}

std::string percent_encoded(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    char buf[4];
    std::snprintf(buf, sizeof buf, "%%%02X", c);
    out += std::isalnum(c) != 0 ? std::string(1, static_cast<char>(c)) : std::string(buf);
  }
  return out;
}

TEST_CASE("a redirect to a private address is refused when its connection opens", "[outbound][ssrf]") {
  receiver rx;
  client s;
  const auto port = std::to_string(rx.process.port());
  struct hop {
    std::string location;
    std::string refusal;
  };
  for (const auto& [location, refusal] :
       std::vector<hop>{{"http://127.0.0.2:" + port + "/x", "is a loopback address (127.0.0.2)"},
                        {"http://10.0.0.1:" + port + "/x", "is a private address (10.0.0.1)"},
                        {"http://169.254.169.254/latest/meta-data/", "is a link-local address (169.254.169.254)"},
                        {"http://[::1]:" + port + "/x", "is a loopback address (::1)"}}) {
    INFO(location);
    auto before = rx.requests().size();
    auto r = insecure(rx.url("/to/" + percent_encoded(location)));
    r.guard = all_but_the_receiver;
    auto o = s.post(r);
    CHECK_FALSE(o.ok);
    CHECK_FALSE(o.retryable);
    CHECK(o.error.starts_with("refused: "));
    CHECK(o.error.find(refusal) != std::string::npos);
    // Only the first hop arrived; the private one was never connected to.
    auto seen = rx.requests();
    REQUIRE(seen.size() == before + 1);
    CHECK(seen.back().path.starts_with("/to/"));
  }
  // The same guard lets a redirect to an allowed address through.
  auto r = insecure(rx.url("/redirect/1"));
  r.guard = all_but_the_receiver;
  CHECK(s.post(r).ok);
}

// A name is judged by what it resolves to when the connection opens, not
// when the URL was accepted: a host that now resolves to loopback (as a
// rebinding name would) is refused at delivery.
TEST_CASE("a name is judged by the address it resolves to at delivery", "[outbound][ssrf]") {
  receiver rx;
  client s;
  auto r = insecure("http://localhost:" + std::to_string(rx.process.port()) + "/x");
  r.guard = webhook::refusal;
  auto o = s.post(r);
  CHECK_FALSE(o.ok);
  CHECK_FALSE(o.retryable);
  CHECK(o.error.starts_with("refused: resolves to a loopback address ("));
  CHECK(rx.requests().empty());
  // The same URL with the receiver's address allowed arrives: the refusal
  // above was the guard's, not a failed connection.
  r.guard = all_but_the_receiver;
  CHECK(s.post(r).ok);
  CHECK(rx.requests().size() == 1);
}

TEST_CASE("an answer longer than max_response fails the attempt", "[outbound]") {
  receiver rx;
  client s;
  auto r = insecure(rx.url("/big/1000"));
  r.max_response = 1000;
  CHECK(s.post(r).ok);

  // Announced by Content-Length, and streamed without one.
  for (std::string path : {"/big/100000", "/stream/100000"}) {
    r.url = rx.url(path);
    auto o = s.post(r);
    CHECK_FALSE(o.ok);
    CHECK_FALSE(o.retryable);
    CHECK(o.status == 200);
    CHECK(o.error == "response larger than 1000 bytes");
  }
}

TEST_CASE("a receiver slower than the timeout fails the attempt, retryably", "[outbound]") {
  receiver rx;
  client s;
  auto r = insecure(rx.url("/hang/5000"));
  r.timeout = 200ms;
  auto o = s.post(r);
  CHECK_FALSE(o.ok);
  CHECK(o.retryable);
  CHECK(o.error == "timed out after 200 ms (127.0.0.1)");
}

TEST_CASE("the answer's status decides success and retrying, and no secret is in the error", "[outbound]") {
  receiver rx;
  client s;
  struct expect {
    int status;
    bool ok, retryable;
  };
  for (auto e : {expect{204, true, false}, expect{500, false, true}, expect{503, false, true},
                 expect{410, false, false}, expect{400, false, false}, expect{408, false, true},
                 expect{429, false, true}}) {
    auto r = insecure(rx.url("/status/" + std::to_string(e.status) + "?token=q-secret"));
    r.headers = {{"authorization", "Bearer h-secret"}};
    auto o = s.post(r);
    INFO(e.status);
    CHECK(o.ok == e.ok);
    CHECK(o.status == e.status);
    if (!e.ok) {
      CHECK(o.retryable == e.retryable);
      CHECK(o.error == "127.0.0.1 answered HTTP " + std::to_string(e.status));
    }
  }
}

TEST_CASE("a refused connection is retryable", "[outbound]") {
  // Bound but not listening: connecting gets a reset, and the port stays ours.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  client s;
  auto o = s.post(insecure("http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/x"));
  ::close(fd);
  CHECK_FALSE(o.ok);
  CHECK(o.retryable);
  CHECK(o.status == 0);
  CHECK(o.error.starts_with("127.0.0.1: "));
}

TEST_CASE("many concurrent posts all complete, at most max_parallel at once", "[outbound]") {
  receiver rx;
  client s(8);
  std::vector<std::future<outbound::outcome>> fs;
  for (int i = 0; i < 200; ++i) {
    fs.push_back(s.spawn_post(insecure(rx.url("/hang/20?i=" + std::to_string(i)))));
  }
  auto outcomes = await_all(s.io, fs);
  for (const auto& o : outcomes) {
    CHECK(o.ok);
  }
  std::set<std::string> paths;
  std::int64_t peak = 0;
  for (const auto& r : rx.requests()) {
    paths.insert(r.path);
    peak = std::max(peak, r.in_flight);
  }
  CHECK(paths.size() == 200);
  CHECK(peak > 1);
  CHECK(peak <= 8);
}

TEST_CASE("shutdown fails what is queued and lets the transfer under way end", "[outbound]") {
  receiver rx;
  client s(1);
  std::vector<std::future<outbound::outcome>> fs;
  auto slow = insecure(rx.url("/hang/3000"));
  slow.timeout = 1000ms;
  fs.push_back(s.spawn_post(slow));
  for (int i = 0; i < 5; ++i) {
    fs.push_back(s.spawn_post(insecure(rx.url("/ok"))));
  }
  // Until the slow one is under way, the others queued behind it.
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (rx.requests().empty() && std::chrono::steady_clock::now() < deadline) {
    s.io.run_for(10ms);
  }
  REQUIRE(rx.requests().size() == 1);
  s.sender.shutdown();
  auto outcomes = await_all(s.io, fs);
  CHECK(outcomes[0].error == "timed out after 1000 ms (127.0.0.1)");
  for (std::size_t i = 1; i < outcomes.size(); ++i) {
    CHECK_FALSE(outcomes[i].ok);
    CHECK(outcomes[i].retryable);
    CHECK(outcomes[i].error == "shutting down");
  }
  auto after = s.post(insecure(rx.url("/ok")));
  CHECK(after.error == "shutting down");
  CHECK(rx.requests().size() == 1);
}

TEST_CASE("a mail is delivered with its headers, an encoded subject and the body", "[outbound]") {
  smtp_sink sink;
  client s;
  auto m = a_mail(sink.url());
  m.subject = "Erinnerung: Grüße aus Köln — „Steuer“ fällig ✓ und noch ein paar Wörter mehr für die Länge";
  std::string long_line(300, 'y');
  m.text = "Hallo Alice,\n.\n.hidden\nÜmlaute äöü = gleich\r\n" + long_line + "\ntrailing space \n";
  auto o = s.send(m);
  CHECK(o.ok);
  CHECK(o.status == 250);
  auto seen = sink.messages();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].mail_from == "noreply@todo.test");
  CHECK(seen[0].rcpt_tos == std::vector<std::string>{"alice@example.test"});
  CHECK(seen[0].login.empty());
  CHECK(seen[0].subject == m.subject);
  CHECK(seen[0].body == "Hallo Alice,\n.\n.hidden\nÜmlaute äöü = gleich\n" + long_line + "\ntrailing space \n");
  CHECK(seen[0].raw.find("From: Todo <noreply@todo.test>\r\n") != std::string::npos);
  CHECK(seen[0].raw.find("To: alice@example.test\r\n") != std::string::npos);
  CHECK(seen[0].raw.find("Message-ID: <m-1@todo.test>\r\n") != std::string::npos);
  CHECK(seen[0].raw.find("Subject: =?UTF-8?B?") != std::string::npos);
  CHECK(seen[0].raw.find("Content-Type: text/plain; charset=utf-8\r\n") != std::string::npos);
}

TEST_CASE("a mail authenticates with the credentials in the URL", "[outbound]") {
  smtp_sink sink;
  client s;
  auto o = s.send(a_mail(sink.url("todo:s3cret@")));
  CHECK(o.ok);
  auto seen = sink.messages();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].login == "todo");

  auto wrong = s.send(a_mail(sink.url("todo:p-wrong@")));
  CHECK_FALSE(wrong.ok);
  CHECK_FALSE(wrong.retryable);
  CHECK(wrong.status == 535);
  CHECK(wrong.error.find("wrong") == std::string::npos);
  CHECK(sink.messages().size() == 1);
}

TEST_CASE("a rejected recipient fails for good on 5xx and retryably on 4xx", "[outbound]") {
  smtp_sink sink;
  client s;
  auto m = a_mail(sink.url());
  m.to = "reject-me@example.test";
  auto o = s.send(m);
  CHECK_FALSE(o.ok);
  CHECK_FALSE(o.retryable);
  CHECK(o.status == 550);
  CHECK(o.error == "127.0.0.1 answered SMTP 550");

  m.to = "busy@example.test";
  o = s.send(m);
  CHECK_FALSE(o.ok);
  CHECK(o.retryable);
  CHECK(o.status == 451);
  CHECK(sink.messages().empty());
}

TEST_CASE("a line break in a mail header field is refused", "[outbound]") {
  smtp_sink sink;
  client s;
  auto m = a_mail(sink.url());
  m.subject = "hi\r\nBcc: eve@example.test";
  auto o = s.send(m);
  CHECK_FALSE(o.ok);
  CHECK_FALSE(o.retryable);
  m = a_mail(sink.url());
  m.to = "alice@example.test\nBcc: eve@example.test";
  CHECK_FALSE(s.send(m).ok);
  m = a_mail("http://127.0.0.1/");
  o = s.send(m);
  CHECK_FALSE(o.ok);
  CHECK_FALSE(o.retryable);
  CHECK(sink.messages().empty());
}

TEST_CASE("the message is RFC 5322 with CRLF lines of at most 78 characters", "[outbound]") {
  auto m = a_mail("smtp://x");
  m.subject = std::string(30, 'a') + "ü" + std::string(80, 'b');
  m.text = std::string(200, 'z') + "\nline two\n";
  // 2025-01-02T03:04:05Z
  auto at = std::chrono::system_clock::time_point(std::chrono::seconds(1735787045));
  auto msg = outbound::format_message(m, at);
  CHECK(msg.starts_with("Date: Thu, 02 Jan 2025 03:04:05 +0000\r\n"));
  CHECK(msg.find("MIME-Version: 1.0\r\n") != std::string::npos);
  CHECK(msg.find("Content-Transfer-Encoding: quoted-printable\r\n") != std::string::npos);
  CHECK(msg.find("\r\n\r\n") != std::string::npos);
  CHECK(msg.ends_with("line two\r\n"));
  std::size_t start = 0;
  while (start < msg.size()) {
    auto end = msg.find("\r\n", start);
    REQUIRE(end != std::string::npos);
    auto line = msg.substr(start, end - start);
    INFO(line);
    CHECK(line.size() <= 78);
    CHECK(line.find('\n') == std::string::npos);
    CHECK(line.find('\r') == std::string::npos);
    start = end + 2;
  }
  CHECK(outbound::format_message(a_mail("smtp://x"), at).find("Subject: Reminder\r\n") != std::string::npos);
}
