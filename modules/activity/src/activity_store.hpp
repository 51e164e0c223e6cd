#pragma once
// The activity module's SQL: reads of the events table, scoped by user.
#include "todo/db.hpp"
#include "todo/events.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <optional>
#include <string>
#include <vector>

namespace todo::activity::store {

namespace asio = boost::asio;

struct entry {
  std::int64_t seq = 0;
  std::string type;  // without the "com.todo." prefix
  std::string task_id;
  time::ms at{};
  std::string summary;
  std::string changes;  // encoded JSON object
};

struct activity_query {
  std::string user;
  std::optional<std::int64_t> before_seq;
  std::optional<std::string> task_id;
  int limit = 50;
};

// Newest first, up to limit + 1 entries.
asio::awaitable<boost::system::result<std::vector<entry>>> activity(db::pool& db, activity_query q);

struct event_page {
  std::vector<event> items;
  std::int64_t last_seq = 0;  // the user's newest sequence number
};

// The user's events after `after`, oldest first.
asio::awaitable<boost::system::result<event_page>> events_after(db::pool& db, std::string user, std::int64_t after,
                                                                int limit);

}  // namespace todo::activity::store
