// A reminder's `state` in the task follows the reminders module's events:
// the module fires and delivers, the task shows the outcome. The state is
// delivery status, not an edit of the task: it does not change the task's
// version or append a task event (the reminder event is the record).
#include "handlers.hpp"

#include "todo/event_log.hpp"
#include "todo/log.hpp"

#include <simdjson.h>

namespace todo::tasks {
namespace {

// Sets one reminder's state, for the fire_at the event is about: an event
// for an earlier time of a reminder that has since moved changes nothing.
const db::statement set_state{
    "tasks_reminder_state",
    "UPDATE tasks SET reminders_rev = reminders_rev + 1, reminders = (SELECT jsonb_agg(CASE WHEN r->>'id' = $3 AND r->>'fire_at' = $4"
    " THEN jsonb_set(r, '{state}', to_jsonb($5::text)) ELSE r END ORDER BY n)"
    " FROM jsonb_array_elements(reminders) WITH ORDINALITY AS x(r, n))"
    " WHERE user_id = $1 AND id = $2::uuid"
    " AND reminders @> jsonb_build_array(jsonb_build_object('id', $3::text, 'fire_at', $4::text))"
    " AND NOT reminders @> jsonb_build_array(jsonb_build_object('id', $3::text, 'fire_at', $4::text, 'state', $5::text))"};

std::optional<db::query> state_change(simdjson::dom::parser& parser, const event& e) {
  if (!e.type.starts_with("com.todo.reminder.")) {
    return std::nullopt;
  }
  simdjson::dom::element root;
  if (parser.parse(e.data).get(root) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  std::string_view id, fire_at, state;
  auto r = root["reminder"];
  if (r["id"].get(id) != simdjson::SUCCESS || r["fire_at"].get(fire_at) != simdjson::SUCCESS ||
      r["state"].get(state) != simdjson::SUCCESS) {
    log::warn("tasks", "reminder event without reminder state", {{"event", std::string_view(e.id)}});
    return std::nullopt;
  }
  return db::query{&set_state, {e.user, e.subject, std::string(id), std::string(fire_at), std::string(state)}};
}

}  // namespace

void follow_reminder_states(event_bus& bus, std::shared_ptr<db::pool> db) {
  event_bus::handler h = [db](std::vector<event> batch) -> asio::awaitable<boost::system::result<void>> {
    simdjson::dom::parser parser;
    std::vector<db::query> qs;
    for (const auto& e : batch) {
      if (auto q = state_change(parser, e)) {
        qs.push_back(std::move(*q));
      }
    }
    if (qs.empty()) {
      co_return boost::system::result<void>{};
    }
    auto r = co_await db->execute(std::move(qs));
    if (!r) {
      co_return r.error();
    }
    co_return boost::system::result<void>{};
  };
  bus.subscribe("tasks-reminder-state", std::move(h));
}

}  // namespace todo::tasks
