#include "task.hpp"

#include "todo/json.hpp"

#include <array>

namespace todo::tasks {
namespace {
constexpr std::array<std::string_view, 5> names{"none", "low", "medium", "high", "urgent"};
}

std::string_view to_string(priority p) { return names[static_cast<std::size_t>(p)]; }

std::optional<priority> parse_priority(std::string_view s) {
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] == s) {
      return static_cast<priority>(i);
    }
  }
  return std::nullopt;
}

std::string to_json(const task& t) {
  json::writer w;
  w.begin_object();
  w.key("id").value(t.id);
  w.key("title").value(t.title);
  w.key("description").value(t.description);
  w.key("completed").value(t.completed);
  w.key("completed_at");
  t.completed_at ? w.value(time::format(*t.completed_at)) : w.null();
  w.key("priority").value(to_string(t.prio));
  w.key("tags").begin_array();
  for (const auto& tag : t.tags) {
    w.value(tag);
  }
  w.end_array();
  w.key("due_at");
  t.due_at ? w.value(time::format(*t.due_at)) : w.null();
  w.key("timezone").value(t.timezone);
  w.key("recurrence");
  write_recurrence(w, t);
  w.key("series_id");
  t.series_id ? w.value(*t.series_id) : w.null();
  w.key("reminders");
  write_reminders(w, t.reminders);
  w.key("version").value(t.version);
  w.key("created_at").value(time::format(t.created_at));
  w.key("updated_at").value(time::format(t.updated_at));
  w.end_object();
  return w.take();
}

void write_recurrence(json::writer& w, const task& t) {
  if (t.rrule) {
    w.begin_object().key("rrule").value(*t.rrule).end_object();
  } else {
    w.null();
  }
}

std::string etag(const task& t) { return "\"" + std::to_string(t.version) + "\""; }

}  // namespace todo::tasks
