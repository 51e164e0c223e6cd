#pragma once
// The Dapr sidecar's HTTP API, as shared/DAPR.md describes it: the Jobs API
// and the state API, through a Beast HTTP client on the io_context.
#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace boost::asio {
class io_context;
}
namespace todo::metrics {
class registry;
}

namespace todo::dapr {

struct client_options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 3500;
  std::string api_token;  // DAPR_API_TOKEN: sent as dapr-api-token when set
  std::chrono::milliseconds timeout{5000};  // per call: connect, write, read
};

// A call that reached the sidecar: its status, body and ETag header.
struct reply {
  unsigned status = 0;
  std::string body;
  std::string etag;
};

enum class errc {
  unavailable = 1,  // no connection, reset, timed out: the sidecar is away
  rejected,         // the sidecar answered with an unexpected status
  conflict,         // ETag mismatch (409)
};
const boost::system::error_category& category() noexcept;
boost::system::error_code make_error_code(errc e) noexcept;

class client {
 public:
  client(boost::asio::io_context& io, client_options o, metrics::registry& m);
  ~client();

  // One request on a kept-alive connection (reconnects as needed). `headers`
  // are added as given (If-Match for an ETag delete).
  boost::asio::awaitable<boost::system::result<reply>> call(
      std::string method, std::string target, std::string body,
      std::vector<std::pair<std::string, std::string>> headers = {});

  // POST /v1.0-alpha1/jobs/{name} with dueTime (RFC 3339), data, overwrite
  // true and an explicit constant failure policy.
  boost::asio::awaitable<boost::system::result<void>> schedule_job(std::string name, std::string due_time,
                                                                   std::string data_json);
  // DELETE /v1.0-alpha1/jobs/{name}; 204 also for an unknown name.
  boost::asio::awaitable<boost::system::result<void>> delete_job(std::string name);
  // GET /v1.0/healthz/outbound: true on 204.
  boost::asio::awaitable<bool> healthy();

  const client_options& options() const;

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace todo::dapr

template <>
struct boost::system::is_error_code_enum<todo::dapr::errc> : std::true_type {};
