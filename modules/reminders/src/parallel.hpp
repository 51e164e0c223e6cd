#pragma once
// Runs f(0) .. f(n-1) with at most `width` at a time, and resumes when all
// have finished.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/co_spawn.hpp>
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
  // The workers share the counters on a strand of their own. The last one
  // to finish sends on a channel with room for one message, so the waiter
  // gets it whether it is already waiting or not yet: a coroutine cannot
  // move to the workers' strand to look and wait there (it always resumes on
  // its own executor), so a look-then-wait would race the last worker.
  auto outer = co_await asio::this_coro::executor;
  auto ex = asio::any_io_executor(asio::make_strand(outer));
  struct shared {
    std::size_t next = 0;
    std::size_t running = 0;
    asio::experimental::concurrent_channel<void(boost::system::error_code)> done;
    explicit shared(asio::any_io_executor e) : done(e, 1) {}
  };
  auto st = std::make_shared<shared>(ex);
  st->running = std::min(n, width);
  for (std::size_t w = 0, workers = st->running; w < workers; ++w) {
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
            st->done.try_send(boost::system::error_code{});
          }
        });
  }
  co_await st->done.async_receive(asio::as_tuple(asio::use_awaitable));
}

}  // namespace todo::reminders
