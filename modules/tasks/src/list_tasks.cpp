// GET /api/v1/tasks
#include "handlers.hpp"
#include "listing.hpp"
#include "task_store.hpp"

#include "todo/json.hpp"
#include "todo/problem.hpp"

namespace todo::tasks {

asio::awaitable<http::response> list_tasks(state_ptr st, request_context ctx) {
  auto pairs = http::parse_query(ctx.req.query);
  if (!pairs) {
    co_return problem(errc::bad_request, "The query string has a malformed percent escape");
  }
  auto parsed = listing::parse(*pairs);
  if (auto* e = std::get_if<field_error>(&parsed)) {
    co_return problem(errc::bad_request, e->field + ": " + e->message, {*e});
  }
  auto f = std::get<listing::filter>(std::move(parsed));
  std::optional<listing::position> after;
  if (f.cursor) {
    after = listing::decode_cursor(f, ctx.user, *f.cursor, st->cursor_key);
    if (!after) {
      field_error e{"cursor", "is not a cursor this server issued for this query and user"};
      co_return problem(errc::bad_request, e.field + ": " + e.message, {e});
    }
  }
  auto q = listing::page_query(f, ctx.user, after, time::now());
  auto r = co_await st->db->execute_one(std::move(q));
  if (!r) {
    co_return problem_from(r.error());
  }
  const int limit = f.limit;
  const int shown = std::min(r->size(), limit);
  json::writer w;
  w.begin_object().key("items").begin_array();
  for (int i = 0; i < shown; ++i) {
    w.raw(to_json(store::read_task(*r, i)));
  }
  w.end_array().key("next_cursor");
  if (r->size() > limit) {
    // The keys follow the task's columns; the last shown row is where the
    // next page starts.
    listing::position p;
    const int first_key = static_cast<int>(store::task_column_count);
    for (std::size_t k = 0; k < listing::key_count(f); ++k) {
      p.keys.emplace_back(r->text(shown - 1, first_key + static_cast<int>(k)));
    }
    p.id = std::string(r->text(shown - 1, 0));
    w.value(listing::encode_cursor(f, ctx.user, p, st->cursor_key));
  } else {
    w.null();
  }
  w.end_object();
  co_return http::json(200, w.take());
}

}  // namespace todo::tasks
