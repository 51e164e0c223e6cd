// The Dapr Jobs API as the scheduler: each job is a sidecar job, and the
// sidecar calls POST /job/{name} when it is due. The sidecar's health is
// polled for /ready; while it is away, scheduling fails and the reminders
// module's reconciliation schedules again when it returns.
#include "scheduler.hpp"

#include "todo/dapr.hpp"
#include "todo/log.hpp"
#include "todo/metrics.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>

namespace todo::reminders {
namespace {

using namespace std::chrono_literals;

class dapr_jobs final : public scheduler, public std::enable_shared_from_this<dapr_jobs> {
 public:
  dapr_jobs(asio::io_context& io, std::shared_ptr<dapr::client> c, metrics::registry& m)
      : io_(io), client_(std::move(c)) {
    m.add_gauge("todo_dapr_sidecar_up", "1 while the Dapr sidecar answers its health check", {},
                [this] { return healthy_.load() ? 1.0 : 0.0; });
  }

  asio::awaitable<result<void>> schedule(job j) override {
    auto call = client_->schedule_job(std::move(j.name), time::format(j.due), std::move(j.data));
    auto r = co_await std::move(call);
    if (!r) {
      healthy_.store(r.error() != dapr::errc::unavailable && healthy_.load());
      co_return r.error();
    }
    co_return result<void>{};
  }

  asio::awaitable<result<void>> cancel(std::string name) override {
    auto call = client_->delete_job(std::move(name));
    auto r = co_await std::move(call);
    if (!r) {
      co_return r.error();
    }
    co_return result<void>{};
  }

  void start(fire_fn f) override {
    fire_ = std::move(f);
    asio::co_spawn(asio::make_strand(io_), watch(shared_from_this()), [](std::exception_ptr e) {
      if (e) {
        log::error("scheduler", "sidecar health watch stopped", {});
      }
    });
  }

  bool ready() const override { return healthy_.load(); }

  asio::awaitable<bool> deliver(std::string name, std::string data) override {
    if (!fire_) {
      co_return false;
    }
    std::vector<due_job> one;
    one.push_back({std::move(name), std::move(data), time::now()});
    auto call = fire_(std::move(one));
    auto done = co_await std::move(call);
    co_return !done.empty() && done[0];
  }

 private:
  static asio::awaitable<void> watch(std::shared_ptr<dapr_jobs> self) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (;;) {
      auto up = co_await self->client_->healthy();
      if (up != self->healthy_.exchange(up)) {
        if (up) {
          log::info("scheduler", "dapr sidecar is up", {});
        } else {
          log::warn("scheduler", "dapr sidecar is down; reminders wait", {});
        }
      }
      timer.expires_after(up ? 5s : 1s);
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }

  asio::io_context& io_;
  std::shared_ptr<dapr::client> client_;
  std::atomic<bool> healthy_{false};
};

}  // namespace

std::shared_ptr<scheduler> make_dapr_scheduler(asio::io_context& io, std::shared_ptr<dapr::client> c,
                                               metrics::registry& m) {
  return std::make_shared<dapr_jobs>(io, std::move(c), m);
}

}  // namespace todo::reminders
