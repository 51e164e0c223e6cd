#include "task_store.hpp"

#include "task_events.hpp"
#include "todo/events.hpp"
#include "todo/json.hpp"

#include <stdexcept>

namespace todo::tasks::store {
namespace {

const db::statement select_one{"tasks_find", "SELECT " TODO_TASK_COLUMNS " FROM tasks WHERE user_id = $1 AND id = $2"};

const db::statement select_tags{
    "tasks_tags",
    "SELECT tag, count(*) FILTER (WHERE NOT completed), count(*) FROM tasks, unnest(tags) AS tag"
    " WHERE user_id = $1 GROUP BY tag ORDER BY tag"};

// Each write appends its event in the same statement (events.hpp): $1..$7
// are the event's, the task's parameters follow.
const db::statement insert_stmt{
    "tasks_insert",
    "WITH changed AS (INSERT INTO tasks (id, user_id, title, description, completed, completed_at, priority, tags,"
    " due_at, timezone, series_id, version, created_at, updated_at, recurrence, series_start, reminders)"
    " VALUES ($8, $1, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23::jsonb) RETURNING id), "
    APPEND_EVENT_FROM("changed")};

// The next occurrence of a series, once per completed occurrence: the
// succession row is the guard (its key is the predecessor), and the task
// and its event are written only if that row is new. $1..$23 as insert_stmt,
// $24 the predecessor.
const db::statement insert_successor_stmt{
    "tasks_insert_successor",
    "WITH marked AS (INSERT INTO task_successions (predecessor_id, user_id, successor_id)"
    " VALUES ($24::uuid, $1, $8::uuid) ON CONFLICT (predecessor_id) DO NOTHING RETURNING 1),"
    " changed AS (INSERT INTO tasks (id, user_id, title, description, completed, completed_at, priority, tags,"
    " due_at, timezone, series_id, version, created_at, updated_at, recurrence, series_start, reminders)"
    " SELECT $8::uuid, $1, $9, $10, $11::bool, $12::timestamptz, $13::smallint, $14::text[], $15::timestamptz,"
    " $16, $17::uuid, $18::bigint, $19::timestamptz, $20::timestamptz, $21, $22::timestamptz, $23::jsonb FROM marked"
    " RETURNING id), "
    APPEND_EVENT_FROM("changed")};

const db::statement select_successor{
    "tasks_successor", "SELECT successor_id FROM task_successions WHERE user_id = $1 AND predecessor_id = $2"};

const db::statement replace_stmt{
    "tasks_replace",
    "WITH changed AS (UPDATE tasks SET title = $9, description = $10, completed = $11, completed_at = $12,"
    " priority = $13, tags = $14, due_at = $15, timezone = $16, version = $17, updated_at = $18,"
    " recurrence = $20, series_id = $21, series_start = $22, reminders = $23::jsonb"
    " WHERE user_id = $1 AND id = $8 AND version = $19 AND reminders_rev = $24 RETURNING id), " APPEND_EVENT_FROM("changed")};

const db::statement delete_stmt{
    "tasks_delete",
    "WITH changed AS (DELETE FROM tasks WHERE user_id = $1 AND id = $8 AND version = $9 RETURNING id), "
    APPEND_EVENT_FROM("changed")};

db::param stamp(const std::optional<time::ms>& t) {
  return t ? db::param(time::format(*t)) : std::nullopt;
}

// PostgreSQL's text form of text[]: {a,"b c",NULL}.
std::vector<std::string> parse_array(std::string_view s) {
  std::vector<std::string> out;
  if (s.size() < 2 || s.front() != '{' || s.back() != '}') {
    throw std::runtime_error("unexpected array text");
  }
  s = s.substr(1, s.size() - 2);
  std::size_t i = 0;
  while (i < s.size()) {
    std::string item;
    if (s[i] == '"') {
      ++i;
      while (i < s.size() && s[i] != '"') {
        if (s[i] == '\\' && i + 1 < s.size()) {
          ++i;
        }
        item.push_back(s[i++]);
      }
      ++i;  // closing quote
    } else {
      while (i < s.size() && s[i] != ',') {
        item.push_back(s[i++]);
      }
    }
    out.push_back(std::move(item));
    ++i;  // comma
  }
  return out;
}

std::string reminders_json(const std::vector<reminder>& rs) {
  json::writer w;
  write_reminders(w, rs);
  return w.take();
}

std::optional<time::ms> optional_stamp(const db::rows& r, int row, int col) {
  if (r.is_null(row, col)) {
    return std::nullopt;
  }
  return time::from_unix_ms(r.integer(row, col));
}

}  // namespace

task read_task(const db::rows& r, int row) {
  task t;
  t.id = std::string(r.text(row, 0));
  t.user_id = std::string(r.text(row, 1));
  t.title = std::string(r.text(row, 2));
  t.description = std::string(r.text(row, 3));
  t.completed = r.boolean(row, 4);
  t.completed_at = optional_stamp(r, row, 5);
  t.prio = static_cast<priority>(r.integer(row, 6));
  t.tags = parse_array(r.text(row, 7));
  t.due_at = optional_stamp(r, row, 8);
  t.timezone = std::string(r.text(row, 9));
  if (!r.is_null(row, 10)) {
    t.series_id = std::string(r.text(row, 10));
  }
  t.version = r.integer(row, 11);
  t.created_at = time::from_unix_ms(r.integer(row, 12));
  t.updated_at = time::from_unix_ms(r.integer(row, 13));
  if (!r.is_null(row, 14)) {
    t.rrule = std::string(r.text(row, 14));
  }
  t.series_start = optional_stamp(r, row, 15);
  t.reminders = read_reminders(r.text(row, 16));
  t.reminders_rev = r.integer(row, 17);
  return t;
}

asio::awaitable<result<successor>> find_successor(db::pool& db, std::string user, std::string predecessor) {
  db::query q{&select_successor, {user, std::move(predecessor)}};
  auto r = co_await db.execute_one(std::move(q));
  if (!r) {
    co_return r.error();
  }
  successor out;
  if (r->size() == 0) {
    co_return out;
  }
  out.recorded = true;
  auto found = co_await find(db, std::move(user), std::string(r->text(0, 0)));
  if (!found) {
    co_return found.error();
  }
  out.next = std::move(*found);
  co_return out;
}

asio::awaitable<result<std::optional<task>>> find(db::pool& db, std::string user, std::string id) {
  db::query q{&select_one, {std::move(user), std::move(id)}};
  auto r = co_await db.execute_one(std::move(q));
  if (!r) {
    co_return r.error();
  }
  if (r->size() == 0) {
    co_return std::optional<task>{};
  }
  co_return read_task(*r, 0);
}

asio::awaitable<result<std::vector<tag_count>>> tag_counts(db::pool& db, std::string user) {
  db::query q{&select_tags, {std::move(user)}};
  auto r = co_await db.execute_one(std::move(q));
  if (!r) {
    co_return r.error();
  }
  std::vector<tag_count> out;
  out.reserve(static_cast<std::size_t>(r->size()));
  for (int i = 0; i < r->size(); ++i) {
    out.push_back({std::string(r->text(i, 0)), r->integer(i, 1), r->integer(i, 2)});
  }
  co_return out;
}

db::query insert(const task& t) {
  auto p = event_params("created", nullptr, t);
  for (auto& v : std::vector<db::param>{t.id, t.title, t.description, t.completed ? "t" : "f", stamp(t.completed_at),
                                        std::to_string(static_cast<int>(t.prio)), db::array_literal(t.tags),
                                        stamp(t.due_at), t.timezone, t.series_id, std::to_string(t.version),
                                        time::format(t.created_at), time::format(t.updated_at), t.rrule,
                                        stamp(t.series_start), reminders_json(t.reminders)}) {
    p.push_back(std::move(v));
  }
  return {&insert_stmt, std::move(p)};
}

db::query insert_successor(const task& t, const std::string& predecessor) {
  auto q = insert(t);
  q.stmt = &insert_successor_stmt;
  q.params.push_back(predecessor);
  return q;
}

db::query replace(const task& before, const task& after, std::string_view kind) {
  auto p = event_params(kind, &before, after);
  for (auto& v : std::vector<db::param>{after.id, after.title, after.description, after.completed ? "t" : "f",
                                        stamp(after.completed_at), std::to_string(static_cast<int>(after.prio)),
                                        db::array_literal(after.tags), stamp(after.due_at), after.timezone,
                                        std::to_string(after.version), time::format(after.updated_at),
                                        std::to_string(before.version), after.rrule, after.series_id,
                                        stamp(after.series_start), reminders_json(after.reminders),
                                        std::to_string(before.reminders_rev)}) {
    p.push_back(std::move(v));
  }
  return {&replace_stmt, std::move(p)};
}

db::query remove(const task& t) {
  auto p = event_params("deleted", &t, t);
  p.push_back(t.id);
  p.push_back(std::to_string(t.version));
  return {&delete_stmt, std::move(p)};
}

}  // namespace todo::tasks::store
