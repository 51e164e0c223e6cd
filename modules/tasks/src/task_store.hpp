#pragma once
// The SQL of the tasks module. Every statement is scoped by user_id.
#include "task.hpp"
#include "todo/db.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <optional>

namespace todo::tasks::store {

namespace asio = boost::asio;
template <class T>
using result = boost::system::result<T>;

asio::awaitable<result<std::optional<task>>> find(db::pool& db, std::string user, std::string id);

struct tag_count {
  std::string tag;
  std::int64_t open = 0;
  std::int64_t total = 0;
};
// The next occurrence recorded for a completed one: `recorded` once it was
// created, `next` while it still exists.
struct successor {
  bool recorded = false;
  std::optional<task> next;
};
asio::awaitable<result<successor>> find_successor(db::pool& db, std::string user, std::string predecessor);

// Every tag of the user's tasks, by name.
asio::awaitable<result<std::vector<tag_count>>> tag_counts(db::pool& db, std::string user);

// The columns read_task expects, in order, for statements built elsewhere
// (listing.cpp). In the header, so that the pure listing code links without
// the store (the fuzz targets build it alone).
#define TODO_TASK_COLUMNS                                                                                           \
  "id, user_id, title, description, completed, floor(extract(epoch FROM completed_at) * 1000)::int8, priority, " \
  "tags, floor(extract(epoch FROM due_at) * 1000)::int8, timezone, series_id, version, "                          \
  "floor(extract(epoch FROM created_at) * 1000)::int8, floor(extract(epoch FROM updated_at) * 1000)::int8, recurrence, " \
  "floor(extract(epoch FROM series_start) * 1000)::int8, reminders::text, reminders_rev"
inline constexpr std::string_view task_columns = TODO_TASK_COLUMNS;
inline constexpr std::size_t task_column_count = 18;
task read_task(const db::rows& r, int row);

// Query builders, so a write and its idempotency record share a
// transaction. Each appends the change's event in the same statement and
// returns one row when the change applied, none when it did not.
db::query insert(const task& t);
// The next occurrence of `predecessor`, written (with its event) only if
// none was recorded for it before; returns one row when written.
db::query insert_successor(const task& t, const std::string& predecessor);
// Writes `after` if the stored version is still before.version. `kind` names
// the event: "updated", "completed", "reopened".
db::query replace(const task& before, const task& after, std::string_view kind);
// Deletes the task if its stored version is still t.version.
db::query remove(const task& t);

}  // namespace todo::tasks::store
