#include "activity_store.hpp"

#include "todo/event_log.hpp"

namespace todo::activity::store {
namespace {

#define ACTIVITY_COLUMNS                                                                            \
  "seq, substr(type, 10), subject, floor(extract(epoch FROM time) * 1000)::int8, summary,"         \
  " (data::jsonb -> 'changes')::text"

// Two shapes, so each has its own plan: (user_id, seq) and (user_id, subject, seq).
const db::statement activity_stmt{
    "activity_list",
    "SELECT " ACTIVITY_COLUMNS " FROM events WHERE user_id = $1 AND type LIKE 'com.todo.task.%'"
    " AND ($2::int8 IS NULL OR seq < $2::int8) ORDER BY seq DESC LIMIT $3"};
const db::statement activity_task_stmt{
    "activity_list_task",
    "SELECT " ACTIVITY_COLUMNS " FROM events WHERE user_id = $1 AND subject = $4 AND type LIKE 'com.todo.task.%'"
    " AND ($2::int8 IS NULL OR seq < $2::int8) ORDER BY seq DESC LIMIT $3"};
}  // namespace

asio::awaitable<boost::system::result<std::vector<entry>>> activity(db::pool& db, activity_query q) {
  std::vector<db::param> p{q.user, q.before_seq ? db::param(std::to_string(*q.before_seq)) : std::nullopt,
                           std::to_string(q.limit + 1)};
  if (q.task_id) {
    p.push_back(*q.task_id);
  }
  db::query sql{q.task_id ? &activity_task_stmt : &activity_stmt, std::move(p)};
  auto r = co_await db.execute_one(std::move(sql));
  if (!r) {
    co_return r.error();
  }
  std::vector<entry> out;
  for (int i = 0; i < r->size(); ++i) {
    out.push_back({r->integer(i, 0), std::string(r->text(i, 1)), std::string(r->text(i, 2)),
                   time::from_unix_ms(r->integer(i, 3)), std::string(r->text(i, 4)), std::string(r->text(i, 5))});
  }
  co_return out;
}

asio::awaitable<boost::system::result<event_page>> events_after(db::pool& db, std::string user, std::int64_t after,
                                                                int limit) {
  auto items = co_await user_events_after(db, user, after, limit);
  if (!items) {
    co_return items.error();
  }
  auto bounds = co_await user_bounds(db, user);
  if (!bounds) {
    co_return bounds.error();
  }
  co_return event_page{std::move(*items), bounds->last_seq};
}

}  // namespace todo::activity::store
