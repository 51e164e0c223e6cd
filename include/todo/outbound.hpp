#pragma once
// Outbound notification transfers: HTTPS webhooks and SMTP mail, through
// libcurl on a worker thread of their own, so no I/O thread ever blocks on a
// slow receiver. Each call resumes on the awaiting coroutine's executor.
#include "todo/http.hpp"
#include "todo/webhook_target.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace todo::outbound {

struct webhook_request {
  std::string url;
  std::vector<http::header> headers;  // sent as given, after content-type: application/json
  std::string body;
  std::chrono::milliseconds timeout{10'000};  // the whole transfer, redirects included
  int max_redirects = 3;
  std::size_t max_response = 64 * 1024;  // a longer answer body fails the attempt
  // Local and test use only: http:// and loopback or private addresses.
  bool allow_insecure = false;
  // The address check at every connection, redirects included; its answer
  // is why an address is refused. Unset: webhook::refusal, or none with
  // allow_insecure. Tests set it to tell one loopback address from another.
  std::function<std::optional<std::string_view>(const webhook::address&)> guard;
};

struct mail {
  std::string smtp_url;  // smtp://host:587 (STARTTLS when offered), smtps://host:465; user:pass@ for AUTH
  std::string from;  // an address, or `Name <address>`: the envelope takes the part in brackets
  std::string to;    // likewise
  std::string subject;
  std::string text;        // plain-text body
  std::string message_id;  // without angle brackets; unique per delivery
  std::chrono::milliseconds timeout{30'000};
};

struct outcome {
  bool ok = false;         // a 2xx answer / the message accepted
  bool retryable = true;   // false when trying again cannot help (a refused target, a 4xx other than 408/429)
  long status = 0;         // the HTTP status or the last SMTP reply code; 0 when none came
  std::string error;       // one line, without credentials; empty when ok
};

// The RFC 5322 message send() uploads: Date (UTC), From, To, Subject (an
// RFC 2047 encoded word when not plain ASCII), Message-ID, then the text as
// quoted-printable UTF-8, all with CRLF line ends. Expects from, to, subject
// and message_id without CR or LF; send() refuses them otherwise.
std::string format_message(const mail& m, std::chrono::system_clock::time_point now);

// Completions are posted to the awaiting coroutine's executor from the
// worker thread: destroy the sender before the io_context its callers run on.
class sender {
 public:
  // At most `max_parallel` transfers at once; more wait their turn.
  explicit sender(std::size_t max_parallel = 32);
  ~sender();  // shutdown()
  sender(const sender&) = delete;
  sender& operator=(const sender&) = delete;

  // The target's address is checked against the private-address guard
  // (webhook_target.hpp) at every connection, redirects included, so a name
  // that resolves elsewhere at delivery time is refused (DNS rebinding).
  boost::asio::awaitable<outcome> post(webhook_request r);
  boost::asio::awaitable<outcome> send(mail m);

  // Fails what is queued ("shutting down", retryable), lets transfers under
  // way end, joins the worker. Blocks until then, up to the longest timeout
  // under way: call it (or destroy the sender) off the I/O threads.
  void shutdown();

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace todo::outbound
