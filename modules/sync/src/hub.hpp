#pragma once
// Every open WebSocket of this replica, by user. Each connection receives
// its user's events in sequence order, gap-free and without duplicates:
// live events from the log follower when they are the next expected, and
// anything else (a resume, a gap) read back from the durable log first.
#include "todo/config.hpp"
#include "todo/event_log.hpp"
#include "todo/events.hpp"
#include "todo/websocket.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace todo {
class event_bus;
namespace db {
class pool;
}
namespace jwt {
class verifier;
}
namespace metrics {
class registry;
class counter;
class histogram;
}  // namespace metrics
}  // namespace todo

namespace todo::sync {

class hub final : public ws::handler, public std::enable_shared_from_this<hub> {
 public:
  hub(boost::asio::io_context& io, std::shared_ptr<db::pool> db, const jwt::verifier& v, websocket_config cfg,
      metrics::registry& m);

  std::variant<ws::admission, http::response> admit(const http::request& req) override;
  void opened(const std::shared_ptr<ws::peer>& p, const ws::admission& a) override;
  boost::asio::awaitable<void> prepare(ws::admission& a) override;
  void abandoned(const ws::admission& a) override;
  void received(const std::shared_ptr<ws::peer>& p, std::string_view text) override;
  void closed(const std::shared_ptr<ws::peer>& p) override;

  // Follows the log from its end, delivering each batch (runs forever).
  static boost::asio::awaitable<void> follow(std::shared_ptr<hub> self, event_bus* bus);

  std::size_t connections() const;
  // Upgrades are accepted once the log follower knows where the log ends.
  bool following() const { return following_.load(); }

  struct connection {
    std::shared_ptr<ws::peer> peer;
    std::string user;
    std::int64_t last = -1;                 // last sequence sent; -1 until the start is known
    std::optional<std::int64_t> resume;     // a resume waiting for the catch-up loop
    bool catching_up = false;
    bool missed = false;                    // a live event arrived during catch-up
    std::vector<std::chrono::steady_clock::time_point> errors;  // recent malformed frames
  };

 private:
  enum class start { none, fresh, resume };
  struct step {
    std::string user;
    std::int64_t after;
    start kind;
  };
  void release_reservation(const std::string& user);  // with mu_ held
  void deliver_now(const std::vector<event>& batch);
  void start_catch_up(std::uint64_t id);  // with mu_ held
  void stop_catch_up(connection& c);      // the log failed; with mu_ held
  std::optional<step> next_step(std::uint64_t id);
  std::optional<std::int64_t> apply_bounds(std::uint64_t id, const boost::system::result<user_log_bounds>& b);
  enum class progress { done, more, full };
  progress apply_events(std::uint64_t id, const boost::system::result<std::vector<event>>& events);
  static boost::asio::awaitable<void> catch_up(std::shared_ptr<hub> self, std::uint64_t id);
  void send_error(connection& c, std::string_view message);

  boost::asio::io_context& io_;
  std::shared_ptr<db::pool> db_;
  const jwt::verifier& verifier_;
  websocket_config cfg_;
  metrics::counter& malformed_;
  metrics::counter& refused_total_;     // WS_MAX_CONNECTIONS
  metrics::counter& refused_per_user_;  // WS_MAX_PER_USER
  metrics::histogram& delivery_;
  mutable std::mutex mu_;
  std::unordered_map<std::uint64_t, connection> conns_;
  std::unordered_map<std::string, std::vector<std::uint64_t>> by_user_;
  // Admitted upgrades not yet open: counted against the limits.
  std::unordered_map<std::string, std::size_t> reserved_;
  std::size_t reserved_total_ = 0;
  // True once the log follower knows where the log ends.
  std::atomic<bool> following_{false};
};

}  // namespace todo::sync
