#pragma once
// The reminders module's shared state and its two halves: reminders.cpp
// (following tasks, firing, reconciliation, the job route) and delivery.cpp
// (the e-mail and webhook channels).
#include "messages.hpp"
#include "scheduler.hpp"

#include "todo/config.hpp"

#include <boost/asio/awaitable.hpp>

#include <memory>
#include <mutex>
#include <random>

namespace todo {
class event_bus;
class state_store;
namespace db {
class pool;
}
namespace outbound {
class sender;
}
namespace metrics {
class counter;
}
}  // namespace todo

namespace todo::reminders {

struct module {
  asio::io_context& io;
  std::shared_ptr<db::pool> db;
  event_bus& bus;
  std::shared_ptr<scheduler> jobs;
  std::shared_ptr<state_store> store;
  std::shared_ptr<outbound::sender> sender;
  notify_config notify;
  dapr_config dapr;
  metrics::counter& fired;
  metrics::counter& sent;
  metrics::counter& failed;
  metrics::counter& retried;

  std::shared_ptr<std::mutex> rng_mu = std::make_shared<std::mutex>();
  std::mt19937_64 rng{std::random_device{}()};
  std::chrono::milliseconds next_delay(int failed_attempt);
};
using module_ptr = std::shared_ptr<module>;

// One channel of one firing: tries it, records the attempt in the state
// store, and settles it (sent, or failed after the last try) or schedules
// the next try. false: try this job again later.
asio::awaitable<bool> deliver(module_ptr m, job_data d);

}  // namespace todo::reminders
