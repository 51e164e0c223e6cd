// The activity module's route table and handlers.
#include "activity/activity.hpp"
#include "activity_store.hpp"

#include "todo/app.hpp"
#include "todo/json.hpp"
#include "todo/problem.hpp"
#include "todo/router.hpp"
#include "todo/uuid.hpp"

#include <charconv>

namespace todo::activity {
namespace {

namespace asio = boost::asio;

std::optional<std::int64_t> non_negative(std::string_view v) {
  std::int64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc{} || p != v.data() + v.size() || n < 0) {
    return std::nullopt;
  }
  return n;
}

void write_entry(json::writer& w, const store::entry& e) {
  w.begin_object();
  w.key("seq").value(e.seq);
  w.key("type").value(e.type);
  w.key("task_id").value(e.task_id);
  w.key("at").value(time::format(e.at));
  w.key("summary").value(e.summary);
  w.key("changes").raw(e.changes);
  w.end_object();
}

asio::awaitable<http::response> list_activity(std::shared_ptr<db::pool> db, request_context ctx) {
  auto pairs = http::parse_query(ctx.req.query);
  if (!pairs) {
    co_return problem(errc::bad_request, "The query string has a malformed percent escape");
  }
  store::activity_query q;
  q.user = ctx.user;
  for (const auto& [k, v] : *pairs) {
    if (k == "limit") {
      auto n = non_negative(v);
      if (!n || *n < 1 || *n > 200) {
        co_return problem(errc::bad_request, "limit: must be an integer from 1 to 200");
      }
      q.limit = static_cast<int>(*n);
    } else if (k == "cursor") {
      auto n = non_negative(v);
      if (!n || *n < 1) {
        co_return problem(errc::bad_request, "cursor: is not a cursor this server issued");
      }
      q.before_seq = *n;
    } else if (k == "task_id") {
      auto id = uuid::normalize(v);
      if (!id) {
        co_return problem(errc::bad_request, "task_id: must be a task id");
      }
      q.task_id = *id;
    } else {
      co_return problem(errc::bad_request, k + ": is not a known parameter");
    }
  }
  int limit = q.limit;
  auto r = co_await store::activity(*db, std::move(q));
  if (!r) {
    co_return problem_from(r.error());
  }
  bool more = static_cast<int>(r->size()) > limit;
  if (more) {
    r->pop_back();
  }
  json::writer w;
  w.begin_object().key("items").begin_array();
  for (const auto& e : *r) {
    write_entry(w, e);
  }
  w.end_array().key("next_cursor");
  more ? w.value(std::to_string(r->back().seq)) : w.null();
  w.end_object();
  co_return http::json(200, w.take());
}

asio::awaitable<http::response> list_events(std::shared_ptr<db::pool> db, request_context ctx) {
  auto pairs = http::parse_query(ctx.req.query);
  if (!pairs) {
    co_return problem(errc::bad_request, "The query string has a malformed percent escape");
  }
  std::int64_t after = 0;
  int limit = 100;
  for (const auto& [k, v] : *pairs) {
    if (k == "after") {
      auto n = non_negative(v);
      if (!n) {
        co_return problem(errc::bad_request, "after: must be a sequence number (0 or more)");
      }
      after = *n;
    } else if (k == "limit") {
      auto n = non_negative(v);
      if (!n || *n < 1 || *n > 1000) {
        co_return problem(errc::bad_request, "limit: must be an integer from 1 to 1000");
      }
      limit = static_cast<int>(*n);
    } else {
      co_return problem(errc::bad_request, k + ": is not a known parameter");
    }
  }
  auto r = co_await store::events_after(*db, ctx.user, after, limit);
  if (!r) {
    co_return problem_from(r.error());
  }
  json::writer w;
  w.begin_object().key("items").begin_array();
  for (const auto& e : r->items) {
    w.raw(to_cloudevent(e));
  }
  w.end_array().key("last_seq").value(r->last_seq).end_object();
  co_return http::json(200, w.take());
}

}  // namespace

void install(todo::app& a) {
  auto db = a.db;
  a.routes.add(http::method::get, "/api/v1/activity",
               [db](request_context c) { return list_activity(db, std::move(c)); });
  a.routes.add(http::method::get, "/api/v1/events", [db](request_context c) { return list_events(db, std::move(c)); });
}

}  // namespace todo::activity
