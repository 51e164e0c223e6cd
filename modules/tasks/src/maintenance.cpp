#include "handlers.hpp"
#include "idempotency.hpp"

#include "todo/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace todo::tasks {
namespace {

asio::awaitable<void> prune_loop(std::shared_ptr<db::pool> db) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(std::chrono::hours(1));
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) {
      co_return;
    }
    auto pruned = co_await prune_idempotency_keys(*db);
    if (pruned) {
      log::info("tasks", "idempotency keys pruned", {{"rows", *pruned}});
    } else {
      log::warn("tasks", "idempotency key pruning failed", {{"error", pruned.error().message()}});
    }
  }
}

}  // namespace

void start_maintenance(asio::io_context& io, std::shared_ptr<db::pool> db) {
  asio::co_spawn(asio::make_strand(io), prune_loop(std::move(db)), [](std::exception_ptr e) {
    if (e) {
      log::error("tasks", "maintenance stopped", {});
    }
  });
}

}  // namespace todo::tasks
