#pragma once
// Runs f(0) .. f(n-1) with at most `width` at a time, and resumes when all
// have finished.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <functional>
#include <memory>

namespace todo::reminders {

inline boost::asio::awaitable<void> for_each_parallel(std::size_t n, std::size_t width,
                                                      std::function<boost::asio::awaitable<void>(std::size_t)> f) {
  namespace asio = boost::asio;
  if (n == 0) {
    co_return;
  }
  // The workers share counters: one strand of their own serializes them,
  // whatever executor the caller runs on.
  auto outer = co_await asio::this_coro::executor;
  auto ex = asio::any_io_executor(asio::make_strand(outer));
  struct shared {
    std::size_t next = 0;
    std::size_t running = 0;
    asio::steady_timer done;
    explicit shared(asio::any_io_executor e) : done(e, std::chrono::steady_clock::time_point::max()) {}
  };
  auto st = std::make_shared<shared>(ex);
  st->running = std::min(n, width);
  for (std::size_t w = 0; w < st->running; ++w) {
    asio::co_spawn(
        ex,
        [st, n, f]() -> asio::awaitable<void> {
          while (st->next < n) {
            auto i = st->next++;
            auto call = f(i);
            co_await std::move(call);
          }
        },
        [st](std::exception_ptr) {
          if (--st->running == 0) {
            st->done.cancel();
          }
        });
  }
  // Waits on the workers' strand, so the last one cannot finish between the
  // look at `running` and the wait; then back to the caller's executor.
  co_await asio::post(ex, asio::use_awaitable);
  if (st->running > 0) {
    co_await st->done.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  co_await asio::post(outer, asio::use_awaitable);
}

}  // namespace todo::reminders
