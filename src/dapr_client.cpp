#include "todo/dapr.hpp"

#include "todo/json.hpp"
#include "todo/json_parse.hpp"
#include "todo/log.hpp"
#include "todo/metrics.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cctype>
#include <mutex>

namespace todo::dapr {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t max_idle = 8;
constexpr std::uint64_t max_response_body = 4 * 1024 * 1024;

log::limiter unavailable_log_limit(1);

class category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "dapr"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::unavailable: return "Dapr sidecar unavailable";
      case errc::rejected: return "Dapr sidecar rejected the request";
      case errc::conflict: return "ETag mismatch";
    }
    return "unknown";
  }
};

// One kept-alive connection. Its stream, deadline timer included, is only
// touched on its own strand (the stream's executor): every exchange runs
// there, so the timeout handler never races a completion on another thread.
// Between calls it sits in the idle list, owned by nobody else.
struct connection {
  explicit connection(asio::any_io_executor strand) : stream(std::move(strand)) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
};

struct exchange_result {
  boost::system::error_code ec;
  bool answer_started = false;  // some bytes of the response arrived
  bool reusable = false;
  reply answer;
};

using request = bhttp::request<bhttp::string_body>;

// A reused connection the sidecar closed while it sat idle fails like this
// before any byte of the answer.
bool peer_closed(const boost::system::error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::connection_aborted;
}

std::string op_name(std::string_view method, std::string_view target) {
  std::string_view area = "other";
  if (target.starts_with("/v1.0-alpha1/jobs/")) {
    area = "jobs";
  } else if (target.starts_with("/v1.0/state/")) {
    area = "state";
  } else if (target.starts_with("/v1.0/healthz")) {
    area = "healthz";
  }
  std::string out(area);
  out += '_';
  for (char c : method) {
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string_view status_class(unsigned status) {
  if (status >= 200 && status < 300) {
    return "2xx";
  }
  if (status >= 400 && status < 500) {
    return "4xx";
  }
  if (status >= 500 && status < 600) {
    return "5xx";
  }
  return "other";
}

// The errorCode of a Dapr error body, or empty.
std::string error_code_of(std::string_view body) {
  if (body.empty()) {
    return {};
  }
  auto parsed = json::parse_body(body);
  if (!parsed.error.empty()) {
    return {};
  }
  std::string_view code;
  if (parsed.root["errorCode"].get(code) != simdjson::SUCCESS) {
    return {};
  }
  return std::string(code);
}

// As DAPR.md advises: the name also goes unescaped into the trigger URL.
bool valid_job_name(std::string_view name) {
  if (name.empty() || name.size() > 63) {
    return false;
  }
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0);
    if (!ok) {
      return false;
    }
  }
  return true;
}

}  // namespace

const boost::system::error_category& category() noexcept {
  static const category_impl instance;
  return instance;
}

boost::system::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), category()}; }

// Shared by the client and its calls in flight. `mu` guards `idle`; it is
// never held across a suspension.
struct client::impl {
  impl(asio::io_context& i, client_options o, metrics::registry& m) : io(i), opt(std::move(o)), metrics(m) {
    boost::system::error_code ec;
    auto address = asio::ip::make_address(opt.host, ec);
    if (!ec) {
      literal = tcp::endpoint(address, opt.port);
    }
    bool v6 = literal && literal->address().is_v6();
    host_header = (v6 ? "[" + opt.host + "]" : opt.host) + ":" + std::to_string(opt.port);
  }

  std::shared_ptr<connection> take_idle() {
    std::lock_guard lock(mu);
    if (idle.empty()) {
      return nullptr;
    }
    auto c = std::move(idle.back());
    idle.pop_back();
    return c;
  }

  void give_back(std::shared_ptr<connection> c) {
    std::lock_guard lock(mu);
    if (idle.size() < max_idle) {
      idle.push_back(std::move(c));
    }
  }

  void count(std::string_view op, std::string_view outcome) {
    metrics
        .get_counter("todo_dapr_calls_total", "Calls to the Dapr sidecar by operation and outcome",
                     metrics::label("op", op) + "," + metrics::label("outcome", outcome))
        .inc();
  }

  asio::io_context& io;
  const client_options opt;
  metrics::registry& metrics;
  std::optional<tcp::endpoint> literal;  // opt.host as an address; else resolved per connection
  std::string host_header;
  std::mutex mu;
  std::vector<std::shared_ptr<connection>> idle;
};

namespace {

asio::awaitable<boost::system::error_code> connect(std::shared_ptr<client::impl> self, std::shared_ptr<connection> c,
                                                   std::chrono::steady_clock::time_point deadline) {
  auto& s = c->stream;
  boost::system::error_code ec;
  if (self->literal) {
    s.expires_at(deadline);
    auto [cec] = co_await s.async_connect(*self->literal, use_tuple);
    ec = cec;
  } else {
    // A host name (the sidecar is local, so this is quick): getaddrinfo runs
    // on Asio's resolver thread, outside the deadline.
    tcp::resolver resolver(s.get_executor());
    auto service = std::to_string(self->opt.port);
    auto [rec, results] = co_await resolver.async_resolve(self->opt.host, service, use_tuple);
    if (rec) {
      co_return rec;
    }
    s.expires_at(deadline);
    auto [cec, endpoint] = co_await s.async_connect(results, use_tuple);
    ec = cec;
  }
  if (!ec) {
    boost::system::error_code ignored;
    s.socket().set_option(tcp::no_delay(true), ignored);
  }
  co_return ec;
}

// Runs on the connection's strand.
asio::awaitable<exchange_result> exchange(std::shared_ptr<client::impl> self, std::shared_ptr<connection> c,
                                          request req, std::chrono::steady_clock::time_point deadline) {
  exchange_result out;
  auto& s = c->stream;
  if (!s.socket().is_open()) {
    c->buffer.clear();
    auto connected = connect(self, c, deadline);
    out.ec = co_await std::move(connected);
    if (out.ec) {
      co_return out;
    }
  }
  s.expires_at(deadline);
  auto [wec, written] = co_await bhttp::async_write(s, req, use_tuple);
  if (wec) {
    out.ec = wec;
    co_return out;
  }
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(max_response_body);
  s.expires_at(deadline);
  auto [rec, read] = co_await bhttp::async_read(s, c->buffer, parser, use_tuple);
  if (rec) {
    out.ec = rec;
    out.answer_started = parser.got_some() || c->buffer.size() > 0;
    co_return out;
  }
  auto res = parser.release();
  out.answer.status = res.result_int();
  out.answer.etag = std::string(res[bhttp::field::etag]);
  out.answer.body = std::move(res.body());
  // Leftover bytes would be read as the next call's answer.
  out.reusable = !res.need_eof() && c->buffer.size() == 0;
  s.expires_never();
  co_return out;
}

}  // namespace

client::client(asio::io_context& io, client_options o, metrics::registry& m)
    : impl_(std::make_shared<impl>(io, std::move(o), m)) {}

client::~client() = default;

const client_options& client::options() const { return impl_->opt; }

asio::awaitable<boost::system::result<reply>> client::call(std::string method, std::string target, std::string body,
                                                           std::vector<std::pair<std::string, std::string>> headers) {
  auto self = impl_;  // outlives the client while this call runs
  auto deadline = std::chrono::steady_clock::now() + self->opt.timeout;
  request req;
  req.version(11);
  req.method_string(method);
  req.target(target);
  req.set(bhttp::field::host, self->host_header);
  req.set(bhttp::field::user_agent, "todo-server");
  if (!self->opt.api_token.empty()) {
    req.set("dapr-api-token", self->opt.api_token);
  }
  for (auto& [name, value] : headers) {
    req.set(name, value);
  }
  if (!body.empty()) {
    req.set(bhttp::field::content_type, "application/json");
  }
  req.body() = std::move(body);
  req.keep_alive(true);
  req.prepare_payload();
  auto op = op_name(method, target);

  for (int attempt = 0;; ++attempt) {
    // The retry takes a fresh connection: another idle one may be as stale.
    auto c = attempt == 0 ? self->take_idle() : nullptr;
    bool reused = c != nullptr;
    if (!reused) {
      c = std::make_shared<connection>(asio::make_strand(self->io));
    }
    auto run = asio::co_spawn(c->stream.get_executor(), exchange(self, c, req, deadline), asio::use_awaitable);
    auto out = co_await std::move(run);
    if (!out.ec) {
      if (out.reusable) {
        self->give_back(std::move(c));
      }
      self->count(op, status_class(out.answer.status));
      co_return std::move(out.answer);
    }
    // The sidecar closes idle keep-alive connections; that shows only when
    // one is used again. Retried once, and only when no answer began: then
    // the request was not processed, or not far enough to answer.
    if (reused && attempt == 0 && !out.answer_started && peer_closed(out.ec)) {
      continue;
    }
    self->count(op, "unavailable");
    if (auto suppressed = unavailable_log_limit.admit(); suppressed >= 0) {
      log::warn("dapr", "sidecar call failed",
                {{"op", std::string_view(op)}, {"error", out.ec.message()}, {"suppressed", suppressed}});
    }
    co_return errc::unavailable;
  }
}

asio::awaitable<boost::system::result<void>> client::schedule_job(std::string name, std::string due_time,
                                                                  std::string data_json) {
  if (!valid_job_name(name)) {
    log::warn("dapr", "job name refused", {{"job", std::string_view(name)}});
    co_return errc::rejected;
  }
  json::writer w;
  w.begin_object();
  w.key("dueTime").value(due_time);
  // Always some data: an empty Value cannot be rendered, and every trigger
  // of such a job fails.
  w.key("data").raw(data_json.empty() ? std::string_view("{}") : std::string_view(data_json));
  w.key("overwrite").value(true);
  // Retry every 5 s for 10 minutes. Dapr's default (3 retries 1 s apart)
  // drops the job once the app was away for 3 s, as during a restart or a
  // rollout without app health checks; each trigger is idempotent per name,
  // so retrying longer costs only duplicates.
  w.key("failurePolicy").begin_object();
  w.key("constant").begin_object();
  w.key("interval").value("5s");
  w.key("maxRetries").value(120);
  w.end_object();
  w.end_object();
  w.end_object();
  std::string target = "/v1.0-alpha1/jobs/" + name;
  auto sent = call("POST", std::move(target), w.take());
  auto r = co_await std::move(sent);
  if (!r) {
    co_return r.error();
  }
  if (r->status != 204) {
    auto code = error_code_of(r->body);
    log::warn("dapr", "job not scheduled",
              {{"job", std::string_view(name)}, {"status", r->status}, {"error_code", std::string_view(code)}});
    co_return errc::rejected;
  }
  co_return boost::system::result<void>{};
}

asio::awaitable<boost::system::result<void>> client::delete_job(std::string name) {
  if (!valid_job_name(name)) {
    log::warn("dapr", "job name refused", {{"job", std::string_view(name)}});
    co_return errc::rejected;
  }
  std::string target = "/v1.0-alpha1/jobs/" + name;
  auto sent = call("DELETE", std::move(target), {});
  auto r = co_await std::move(sent);
  if (!r) {
    co_return r.error();
  }
  if (r->status != 204) {
    auto code = error_code_of(r->body);
    log::warn("dapr", "job not deleted",
              {{"job", std::string_view(name)}, {"status", r->status}, {"error_code", std::string_view(code)}});
    co_return errc::rejected;
  }
  co_return boost::system::result<void>{};
}

asio::awaitable<bool> client::healthy() {
  auto sent = call("GET", "/v1.0/healthz/outbound", {});
  auto r = co_await std::move(sent);
  co_return r && r->status == 204;
}

}  // namespace todo::dapr
