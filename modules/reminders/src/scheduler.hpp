#pragma once
// Two schedulers behind one interface: the Dapr Jobs API, or an embedded
// scheduler with its jobs in PostgreSQL. A job has a name, a due time and a
// payload; scheduling a name again replaces it. Delivery is at least once,
// never early: handlers are idempotent per name.
#include "todo/time.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace boost::asio {
class io_context;
}
namespace todo {
namespace db {
class pool;
}
namespace dapr {
class client;
}
namespace metrics {
class registry;
}
}  // namespace todo

namespace todo::reminders {

namespace asio = boost::asio;
template <class T>
using result = boost::system::result<T>;

struct job {
  std::string name;
  time::ms due{};
  std::string data;  // JSON
};

struct due_job {
  std::string name;
  std::string data;
  time::ms due{};  // when it falls due (a Dapr trigger: when it came)
};
// Runs due jobs, several at once where the scheduler has several due. For
// each: true, done (delivered or nothing to do); false, failed, and the
// scheduler tries it again later. A job may arrive up to handover_ahead
// before its due time (so the handler's own lookups overlap the wait); a
// handler for which that matters waits the rest out.
using fire_fn = std::function<asio::awaitable<std::vector<bool>>(std::vector<due_job>)>;
constexpr std::chrono::milliseconds handover_ahead{10};

class scheduler {
 protected:
  fire_fn fire_;

 public:
  virtual ~scheduler() = default;
  virtual asio::awaitable<result<void>> schedule(job j) = 0;
  virtual asio::awaitable<result<void>> cancel(std::string name) = 0;
  // Many at once; which of them succeeded. By default 16 calls at a time.
  virtual asio::awaitable<std::vector<bool>> schedule_many(std::vector<job> jobs);
  virtual asio::awaitable<std::vector<bool>> cancel_many(std::vector<std::string> names);
  // Begins firing due jobs (the embedded one) or accepting them (Dapr).
  virtual void start(fire_fn f) = 0;
  // Drops the handler (which holds its owner) once the I/O threads have
  // stopped, so nothing keeps the other alive at exit.
  void stop() { fire_ = nullptr; }
  // For /ready: the scheduler can take jobs now.
  virtual bool ready() const = 0;
  // Runs a job the sidecar delivered to POST /job/{name}.
  virtual asio::awaitable<bool> deliver(std::string name, std::string data) = 0;
};

std::shared_ptr<scheduler> make_embedded_scheduler(asio::io_context& io, std::shared_ptr<db::pool> db,
                                                   metrics::registry& m);
std::shared_ptr<scheduler> make_dapr_scheduler(asio::io_context& io, std::shared_ptr<dapr::client> c,
                                               metrics::registry& m);

}  // namespace todo::reminders
