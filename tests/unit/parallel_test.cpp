// for_each_parallel on a two-thread io_context: every call runs once, no
// more than `width` at a time, and the caller resumes after the last one,
// however the workers' and the caller's threads interleave.
#include "parallel.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

namespace asio = boost::asio;

namespace {

struct round_state {
  int running = 0;  // the calls share the workers' strand
  int widest = 0;
  int calls = 0;
};

asio::awaitable<void> one_round(std::size_t n, std::shared_ptr<round_state> st, std::atomic<int>& finished,
                                std::atomic<int>& failed) {
  std::function<asio::awaitable<void>(std::size_t)> f = [st](std::size_t) -> asio::awaitable<void> {
    st->widest = std::max(st->widest, ++st->running);
    // Finish on a later turn of the pool, on either thread.
    auto ex = co_await asio::this_coro::executor;
    co_await asio::post(ex, asio::use_awaitable);
    --st->running;
    ++st->calls;
  };
  co_await todo::reminders::for_each_parallel(n, 3, std::move(f));
  if (st->calls != static_cast<int>(n) || st->running != 0 || st->widest > 3) {
    ++failed;
  }
  ++finished;
}

}  // namespace

TEST_CASE("for_each_parallel resumes after the last call, every time", "[parallel]") {
  asio::io_context io(2);
  constexpr int rounds = 3000;
  std::atomic<int> finished{0}, failed{0};
  for (int r = 0; r < rounds; ++r) {
    auto st = std::make_shared<round_state>();
    asio::co_spawn(asio::make_strand(io), one_round(static_cast<std::size_t>(r % 9), st, finished, failed),
                   asio::detached);
  }
  std::thread second([&] { io.run_for(std::chrono::seconds(20)); });
  io.run_for(std::chrono::seconds(20));
  second.join();
  CHECK(failed.load() == 0);
  CHECK(finished.load() == rounds);  // a lost wake-up leaves a round waiting forever
}
