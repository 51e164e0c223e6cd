#include "todo/outbound.hpp"

#include "todo/log.hpp"
#include "todo/webhook_target.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <utility>
#include <variant>

namespace todo::outbound {
namespace {

namespace asio = boost::asio;

template <auto F>
struct c_free {
  template <class T>
  void operator()(T* p) const {
    F(p);
  }
};
using easy_ptr = std::unique_ptr<CURL, c_free<curl_easy_cleanup>>;
using multi_ptr = std::unique_ptr<CURLM, c_free<curl_multi_cleanup>>;
using slist_ptr = std::unique_ptr<curl_slist, c_free<curl_slist_free_all>>;
using url_ptr = std::unique_ptr<CURLU, c_free<curl_url_cleanup>>;

outcome failed(bool retryable, std::string error, long status = 0) {
  return {.ok = false, .retryable = retryable, .status = status, .error = std::move(error)};
}

outcome shutting_down() { return failed(true, "shutting down"); }

// Resumes the awaiting coroutine on its own executor; called once, from the
// worker thread. The work guard keeps that executor's context running while
// the transfer is out, and goes with the handler: once posted, the context
// may finish and go away, so the worker must not touch it again.
struct completion {
  virtual ~completion() = default;
  virtual void complete(outcome o) = 0;
};

template <class Handler>
class completion_for final : public completion {
 public:
  explicit completion_for(Handler h) : work_(asio::get_associated_executor(h)), handler_(std::move(h)) {}

  void complete(outcome o) override {
    auto ex = work_.get_executor();
    asio::post(ex, [h = std::move(handler_), w = std::move(work_), o = std::move(o)]() mutable {
      std::move(h)(std::move(o));
    });
  }

 private:
  asio::executor_work_guard<asio::associated_executor_t<Handler>> work_;
  Handler handler_;
};

enum class kind { webhook, mail };

// One transfer: queued by any thread, then owned by the worker while
// libcurl runs it. libcurl's callbacks get a pointer to it, so it stays put.
struct transfer {
  kind what = kind::webhook;
  std::string host;  // for error text: the URL may carry secrets, its host does not
  bool literal_host = false;
  std::chrono::milliseconds timeout{0};
  int max_redirects = 0;
  std::size_t max_response = 0;
  std::function<std::optional<std::string_view>(const webhook::address&)> guard;  // empty: no check
  std::optional<std::string> refused;  // why the guard refused a connection
  std::size_t received = 0;
  bool too_large = false;
  std::string payload;  // the POST body, or the message being uploaded
  std::size_t sent = 0;
  slist_ptr list;  // HTTP headers, or the mail recipients
  easy_ptr easy;   // after what it points at, so cleaned up before it
  std::unique_ptr<completion> done;
};

// Collects the first failing setopt, so a transfer is never started half set up.
struct options {
  CURL* h;
  CURLcode first = CURLE_OK;
  template <class V>
  void operator()(CURLoption o, V v) {
    auto rc = curl_easy_setopt(h, o, v);
    if (rc != CURLE_OK && first == CURLE_OK) {
      first = rc;
    }
  }
};

std::optional<webhook::address> peer_address(const curl_sockaddr& a) {
  webhook::address out;
  if (a.family == AF_INET && a.addrlen >= sizeof(sockaddr_in)) {
    sockaddr_in in{};
    std::memcpy(&in, &a.addr, sizeof in);
    std::memcpy(out.bytes.data(), &in.sin_addr, 4);
    return out;
  }
  if (a.family == AF_INET6 && a.addrlen >= sizeof(sockaddr_in6)) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, &a.addr, sizeof in6);
    std::memcpy(out.bytes.data(), &in6.sin6_addr, 16);
    out.v6 = true;
    return out;
  }
  return std::nullopt;
}

std::string address_text(const webhook::address& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (inet_ntop(a.v6 ? AF_INET6 : AF_INET, a.bytes.data(), buf, sizeof buf) == nullptr) {
    return "?";
  }
  return buf;
}

// libcurl calls this instead of socket(2) for every connection, redirects
// included, with the address it resolved: the one place a name that now
// resolves somewhere private (DNS rebinding) can be caught.
curl_socket_t open_socket(void* p, curlsocktype, curl_sockaddr* a) {
  auto* t = static_cast<transfer*>(p);
  if (t->guard) {
    auto addr = peer_address(*a);
    if (!addr) {
      t->refused = "connects to an address that is not IPv4 or IPv6";
      return CURL_SOCKET_BAD;
    }
    if (auto why = t->guard(*addr)) {
      t->refused = (t->literal_host ? "is " : "resolves to ") + std::string(*why) + " (" + address_text(*addr) + ")";
      return CURL_SOCKET_BAD;
    }
  }
  // CLOEXEC: a child process must not inherit a connection.
  return ::socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

std::size_t on_body(char*, std::size_t size, std::size_t n, void* p) {
  auto* t = static_cast<transfer*>(p);
  auto len = size * n;
  t->received += len;
  if (t->received > t->max_response) {
    t->too_large = true;
    return 0;  // less than given: libcurl aborts with CURLE_WRITE_ERROR
  }
  return len;
}

std::size_t on_upload(char* buf, std::size_t size, std::size_t n, void* p) {
  auto* t = static_cast<transfer*>(p);
  auto len = std::min(size * n, t->payload.size() - t->sent);
  std::memcpy(buf, t->payload.data() + t->sent, len);
  t->sent += len;
  return len;
}

bool has_line_break(std::string_view s) { return s.find_first_of(std::string_view("\r\n\0", 3)) != s.npos; }

bool token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

using prepared = std::variant<std::unique_ptr<transfer>, outcome>;

std::unique_ptr<transfer> new_transfer(kind what) {
  auto t = std::make_unique<transfer>();
  t->what = what;
  t->easy.reset(curl_easy_init());
  if (!t->easy) {
    return nullptr;
  }
  return t;
}

// Options every transfer shares.
void common_options(options& set, transfer& t) {
  set(CURLOPT_NOSIGNAL, 1L);  // signals are the process's, and libcurl runs off the main thread
  set(CURLOPT_TIMEOUT_MS, static_cast<long>(t.timeout.count()));
  // An empty proxy ignores http_proxy and friends: the guard must see the
  // target's address, not a proxy's.
  set(CURLOPT_PROXY, "");
}

prepared prepare_webhook(webhook_request r) {
  auto parsed = webhook::parse_url(r.url, r.allow_insecure);
  if (auto* why = std::get_if<std::string>(&parsed)) {
    return failed(false, "refused: the URL " + *why);
  }
  auto& target = std::get<webhook::target>(parsed);
  for (const auto& h : r.headers) {
    if (h.name.empty() || !std::all_of(h.name.begin(), h.name.end(), token_char)) {
      return failed(false, "a header name is not an HTTP token");
    }
    if (has_line_break(h.value)) {
      return failed(false, "header " + h.name + " has a line break in its value");
    }
  }
  auto t = new_transfer(kind::webhook);
  if (!t) {
    return failed(true, "could not set up the transfer");
  }
  t->host = target.host;
  t->literal_host = webhook::parse_address(target.host).has_value();
  t->timeout = r.timeout;
  t->max_redirects = std::max(r.max_redirects, 0);
  t->max_response = r.max_response;
  if (r.guard) {
    t->guard = std::move(r.guard);
  } else if (!r.allow_insecure) {
    t->guard = webhook::refusal;
  }
  t->payload = std::move(r.body);

  std::vector<std::string> lines{"Content-Type: application/json", "Expect:"};  // no 100-continue round trip
  for (const auto& h : r.headers) {
    // "Name:" alone would tell libcurl to drop the header; "Name;" sends it empty.
    lines.push_back(h.value.empty() ? h.name + ";" : h.name + ": " + h.value);
  }
  for (const auto& line : lines) {
    auto* head = curl_slist_append(t->list.get(), line.c_str());
    if (head == nullptr) {
      return failed(true, "could not set up the transfer");
    }
    if (!t->list) {
      t->list.reset(head);  // the first node stays the head
    }
  }

  const char* protocols = r.allow_insecure ? "http,https" : "https";
  options set{t->easy.get()};
  common_options(set, *t);
  set(CURLOPT_URL, r.url.c_str());
  set(CURLOPT_PROTOCOLS_STR, protocols);
  set(CURLOPT_REDIR_PROTOCOLS_STR, protocols);
  set(CURLOPT_FOLLOWLOCATION, 1L);
  set(CURLOPT_MAXREDIRS, static_cast<long>(t->max_redirects));
  // A 301/302/303 stays a POST with its body, as 307/308 do.
  set(CURLOPT_POSTREDIR, static_cast<long>(CURL_REDIR_POST_ALL));
  set(CURLOPT_POST, 1L);
  set(CURLOPT_POSTFIELDS, t->payload.data());
  set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(t->payload.size()));
  set(CURLOPT_HTTPHEADER, t->list.get());
  set(CURLOPT_USERAGENT, "todo-server");
  set(CURLOPT_WRITEFUNCTION, on_body);
  set(CURLOPT_WRITEDATA, static_cast<void*>(t.get()));
  set(CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(t->max_response));
  set(CURLOPT_OPENSOCKETFUNCTION, open_socket);
  set(CURLOPT_OPENSOCKETDATA, static_cast<void*>(t.get()));
  if (r.allow_insecure) {
    // Such a connection may lead to a private address: never lend it to a
    // guarded transfer to the same host.
    set(CURLOPT_FORBID_REUSE, 1L);
  }
  if (set.first != CURLE_OK) {
    return failed(false, std::string("could not set up the transfer: ") + curl_easy_strerror(set.first));
  }
  return t;
}

// The address in `Name <address>`, or the whole text.
std::string envelope_address(std::string_view s) {
  auto open = s.rfind('<');
  auto close = s.rfind('>');
  if (open != s.npos && close != s.npos && open < close) {
    s = s.substr(open + 1, close - open - 1);
  }
  return "<" + std::string(s) + ">";
}

prepared prepare_mail(mail m, std::chrono::system_clock::time_point now) {
  if (has_line_break(m.from) || has_line_break(m.to) || has_line_break(m.subject) || has_line_break(m.message_id)) {
    return failed(false, "a mail header field has a line break");
  }
  if (m.from.empty() || m.to.empty()) {
    return failed(false, "a mail needs a sender and a recipient");
  }
  url_ptr u(curl_url());
  char* scheme = nullptr;
  char* host = nullptr;
  bool parsed = u && curl_url_set(u.get(), CURLUPART_URL, m.smtp_url.c_str(), 0) == CURLUE_OK &&
                curl_url_get(u.get(), CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
                curl_url_get(u.get(), CURLUPART_HOST, &host, 0) == CURLUE_OK;
  std::string scheme_text = scheme ? scheme : "";
  std::string host_text = host ? host : "";
  curl_free(scheme);
  curl_free(host);
  if (!parsed || (scheme_text != "smtp" && scheme_text != "smtps")) {
    return failed(false, "the mail server URL is not an smtp:// or smtps:// URL");
  }
  auto t = new_transfer(kind::mail);
  if (!t) {
    return failed(true, "could not set up the transfer");
  }
  t->host = host_text;
  t->timeout = m.timeout;
  t->payload = format_message(m, now);
  auto from = envelope_address(m.from);
  auto to = envelope_address(m.to);
  t->list.reset(curl_slist_append(nullptr, to.c_str()));
  if (!t->list) {
    return failed(true, "could not set up the transfer");
  }

  options set{t->easy.get()};
  common_options(set, *t);
  set(CURLOPT_URL, m.smtp_url.c_str());
  set(CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  set(CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_TRY));  // STARTTLS when offered; smtps:// is TLS from the start
  set(CURLOPT_MAIL_FROM, from.c_str());
  set(CURLOPT_MAIL_RCPT, t->list.get());
  set(CURLOPT_UPLOAD, 1L);
  set(CURLOPT_READFUNCTION, on_upload);
  set(CURLOPT_READDATA, static_cast<void*>(t.get()));
  set(CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(t->payload.size()));
  if (set.first != CURLE_OK) {
    return failed(false, std::string("could not set up the transfer: ") + curl_easy_strerror(set.first));
  }
  return t;
}

long response_code(CURL* h) {
  long status = 0;
  if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK) {
    return 0;
  }
  return status;
}

std::string timed_out(const transfer& t) {
  return "timed out after " + std::to_string(t.timeout.count()) + " ms (" + t.host + ")";
}

outcome webhook_outcome(transfer& t, CURLcode rc) {
  long status = response_code(t.easy.get());
  if (t.too_large || rc == CURLE_FILESIZE_EXCEEDED) {
    // Trying again brings the same answer.
    return failed(false, "response larger than " + std::to_string(t.max_response) + " bytes", status);
  }
  switch (rc) {
    case CURLE_OK:
      break;
    case CURLE_OPERATION_TIMEDOUT:
      return failed(true, timed_out(t), status);
    case CURLE_TOO_MANY_REDIRECTS:
      return failed(false, "more than " + std::to_string(t.max_redirects) + " redirects (" + t.host + ")", status);
    default:
      if (t.refused) {
        return failed(false, "refused: " + *t.refused, status);
      }
      if (rc == CURLE_UNSUPPORTED_PROTOCOL && status >= 300 && status < 400) {
        return failed(false, "redirected to a scheme that is not allowed (" + t.host + ")", status);
      }
      return failed(true, t.host + ": " + curl_easy_strerror(rc), status);
  }
  if (status >= 200 && status < 300) {
    return {.ok = true, .retryable = false, .status = status, .error = {}};
  }
  bool retryable = status >= 500 || status == 408 || status == 429;
  return failed(retryable, t.host + " answered HTTP " + std::to_string(status), status);
}

outcome mail_outcome(transfer& t, CURLcode rc) {
  long status = response_code(t.easy.get());
  if (rc == CURLE_OK) {
    return {.ok = true, .retryable = false, .status = status, .error = {}};
  }
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    return failed(true, timed_out(t), status);
  }
  if (status >= 400) {
    return failed(status < 500, t.host + " answered SMTP " + std::to_string(status), status);
  }
  bool retryable = rc != CURLE_LOGIN_DENIED && rc != CURLE_URL_MALFORMAT && rc != CURLE_UNSUPPORTED_PROTOCOL;
  return failed(retryable, t.host + ": " + curl_easy_strerror(rc), status);
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      throw std::runtime_error("curl_global_init failed");
    }
  });
}

}  // namespace

// Only the worker thread touches the multi handle and active_, except for
// curl_multi_wakeup, which any thread may call; mu_ guards the queue.
struct sender::impl {
  explicit impl(std::size_t max_parallel) : max_parallel_(std::max<std::size_t>(max_parallel, 1)) {
    multi_.reset(curl_multi_init());
    if (!multi_) {
      throw std::runtime_error("curl_multi_init failed");
    }
  }

  void submit(std::unique_ptr<transfer> t) {
    {
      std::lock_guard g(mu_);
      if (!stopping_) {
        queue_.push_back(std::move(t));
      }
    }
    if (t) {
      t->done->complete(shutting_down());
      return;
    }
    wake();
  }

  // Should it fail, the worker still looks at the queue within a second.
  void wake() {
    if (auto rc = curl_multi_wakeup(multi_.get()); rc != CURLM_OK) {
      log::warn("outbound", "curl_multi_wakeup failed", {{"error", curl_multi_strerror(rc)}});
    }
  }

  void stop() {
    std::call_once(stopped_, [this] {
      {
        std::lock_guard g(mu_);
        stopping_ = true;
      }
      wake();
      if (worker_.joinable()) {
        worker_.join();
      }
    });
  }

  void run() {
    for (;;) {
      std::deque<std::unique_ptr<transfer>> starting;
      std::deque<std::unique_ptr<transfer>> dropped;
      bool stopping = false;
      {
        std::lock_guard g(mu_);
        stopping = stopping_;
        if (stopping) {
          dropped.swap(queue_);
        }
        while (!queue_.empty() && active_.size() + starting.size() < max_parallel_) {
          starting.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      for (auto& t : dropped) {
        t->done->complete(shutting_down());
      }
      for (auto& t : starting) {
        start(std::move(t));
      }
      if (stopping && active_.empty()) {
        return;
      }
      int running = 0;
      auto rc = curl_multi_perform(multi_.get(), &running);
      if (rc != CURLM_OK) {
        log::error("outbound", "curl_multi_perform failed", {{"error", curl_multi_strerror(rc)}});
      }
      if (finish_done() > 0) {
        continue;  // slots freed: start what waits before sleeping
      }
      rc = curl_multi_poll(multi_.get(), nullptr, 0, 1000, nullptr);
      if (rc != CURLM_OK) {
        log::error("outbound", "curl_multi_poll failed", {{"error", curl_multi_strerror(rc)}});
        std::this_thread::sleep_for(std::chrono::milliseconds(100));  // not a busy loop; this thread is ours
      }
    }
  }

  void start(std::unique_ptr<transfer> t) {
    auto* h = t->easy.get();
    auto rc = curl_multi_add_handle(multi_.get(), h);
    if (rc != CURLM_OK) {
      t->done->complete(failed(true, std::string("could not start the transfer: ") + curl_multi_strerror(rc)));
      return;
    }
    active_.emplace(h, std::move(t));
  }

  int finish_done() {
    int finished = 0;
    int left = 0;
    while (CURLMsg* m = curl_multi_info_read(multi_.get(), &left)) {
      if (m->msg != CURLMSG_DONE) {
        continue;
      }
      // *m is gone once the handle is removed.
      CURL* h = m->easy_handle;
      CURLcode code = m->data.result;
      auto it = active_.find(h);
      if (it == active_.end()) {
        continue;
      }
      auto t = std::move(it->second);
      active_.erase(it);
      if (auto rc = curl_multi_remove_handle(multi_.get(), h); rc != CURLM_OK) {
        log::error("outbound", "curl_multi_remove_handle failed", {{"error", curl_multi_strerror(rc)}});
      }
      auto o = t->what == kind::webhook ? webhook_outcome(*t, code) : mail_outcome(*t, code);
      t->done->complete(std::move(o));
      ++finished;
    }
    return finished;
  }

  const std::size_t max_parallel_;
  multi_ptr multi_;
  std::mutex mu_;
  std::deque<std::unique_ptr<transfer>> queue_;  // guarded by mu_
  bool stopping_ = false;                        // guarded by mu_
  std::unordered_map<CURL*, std::unique_ptr<transfer>> active_;
  std::once_flag stopped_;
  std::thread worker_;
};

namespace {

asio::awaitable<outcome> enqueue(std::shared_ptr<sender::impl> self, std::unique_ptr<transfer> t) {
  auto init = [](auto handler, std::shared_ptr<sender::impl> s, std::unique_ptr<transfer> job) {
    job->done = std::make_unique<completion_for<decltype(handler)>>(std::move(handler));
    s->submit(std::move(job));
  };
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(outcome)>(std::move(init), asio::use_awaitable,
                                                                             std::move(self), std::move(t));
}

}  // namespace

sender::sender(std::size_t max_parallel) {
  global_init();
  impl_ = std::make_shared<impl>(max_parallel);
  impl_->worker_ = std::thread([p = impl_.get()] { p->run(); });
}

sender::~sender() { shutdown(); }

void sender::shutdown() { impl_->stop(); }

asio::awaitable<outcome> sender::post(webhook_request r) {
  auto self = impl_;
  auto job = prepare_webhook(std::move(r));
  if (auto* refused = std::get_if<outcome>(&job)) {
    co_return std::move(*refused);
  }
  auto op = enqueue(std::move(self), std::move(std::get<std::unique_ptr<transfer>>(job)));
  co_return co_await std::move(op);
}

asio::awaitable<outcome> sender::send(mail m) {
  auto self = impl_;
  auto job = prepare_mail(std::move(m), std::chrono::system_clock::now());
  if (auto* refused = std::get_if<outcome>(&job)) {
    co_return std::move(*refused);
  }
  auto op = enqueue(std::move(self), std::move(std::get<std::unique_ptr<transfer>>(job)));
  co_return co_await std::move(op);
}

}  // namespace todo::outbound
