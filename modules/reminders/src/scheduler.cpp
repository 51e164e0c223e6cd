#include "scheduler.hpp"

#include "parallel.hpp"

namespace todo::reminders {

asio::awaitable<std::vector<bool>> scheduler::schedule_many(std::vector<job> jobs) {
  auto ok = std::make_shared<std::vector<bool>>(jobs.size(), false);
  auto all = std::make_shared<std::vector<job>>(std::move(jobs));
  std::function<asio::awaitable<void>(std::size_t)> one = [this, ok, all](std::size_t i) -> asio::awaitable<void> {
    auto call = schedule((*all)[i]);
    auto r = co_await std::move(call);
    (*ok)[i] = r.has_value();
  };
  co_await for_each_parallel(all->size(), 16, std::move(one));
  co_return *ok;
}

asio::awaitable<std::vector<bool>> scheduler::cancel_many(std::vector<std::string> names) {
  auto ok = std::make_shared<std::vector<bool>>(names.size(), false);
  auto all = std::make_shared<std::vector<std::string>>(std::move(names));
  std::function<asio::awaitable<void>(std::size_t)> one = [this, ok, all](std::size_t i) -> asio::awaitable<void> {
    auto call = cancel((*all)[i]);
    auto r = co_await std::move(call);
    (*ok)[i] = r.has_value();
  };
  co_await for_each_parallel(all->size(), 16, std::move(one));
  co_return *ok;
}

}  // namespace todo::reminders
