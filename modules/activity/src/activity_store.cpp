#include "activity_store.hpp"

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
const db::statement events_stmt{
    "events_after",
    "SELECT pos, user_id, seq, id, type, subject, floor(extract(epoch FROM time) * 1000)::int8, summary, data"
    " FROM events WHERE user_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"};
const db::statement last_seq_stmt{"events_last_seq", "SELECT last_seq FROM user_sequences WHERE user_id = $1"};

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
  std::vector<db::query> qs;
  qs.push_back({&events_stmt, {user, std::to_string(after), std::to_string(limit)}});
  qs.push_back({&last_seq_stmt, {user}});
  auto r = co_await db.execute(std::move(qs));
  if (!r) {
    co_return r.error();
  }
  event_page page;
  const auto& rows = (*r)[0];
  for (int i = 0; i < rows.size(); ++i) {
    event e;
    e.pos = rows.integer(i, 0);
    e.user = std::string(rows.text(i, 1));
    e.seq = rows.integer(i, 2);
    e.id = std::string(rows.text(i, 3));
    e.type = std::string(rows.text(i, 4));
    e.subject = std::string(rows.text(i, 5));
    e.time = time::from_unix_ms(rows.integer(i, 6));
    e.summary = std::string(rows.text(i, 7));
    e.data = std::string(rows.text(i, 8));
    page.items.push_back(std::move(e));
  }
  page.last_seq = (*r)[1].size() == 0 ? 0 : (*r)[1].integer(0, 0);
  co_return page;
}

}  // namespace todo::activity::store
