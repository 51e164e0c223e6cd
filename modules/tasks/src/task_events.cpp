#include "task_events.hpp"

#include "todo/json.hpp"
#include "todo/uuid.hpp"

#include <functional>

namespace todo::tasks {
namespace {

bool same_reminders(const std::vector<reminder>& a, const std::vector<reminder>& b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].id != b[i].id || a[i].fire_at != b[i].fire_at || a[i].state != b[i].state || a[i].at != b[i].at ||
        a[i].before != b[i].before) {
      return false;
    }
  }
  return true;
}

using write_fn = std::function<void(json::writer&, const task&)>;

struct field {
  std::string_view name;
  write_fn write;
  std::function<bool(const task&, const task&)> same;
};

void stamp(json::writer& w, const std::optional<time::ms>& t) {
  t ? w.value(time::format(*t)) : w.null();
}

const std::vector<field>& fields() {
  static const std::vector<field> all{
      {"title", [](json::writer& w, const task& t) { w.value(t.title); },
       [](const task& a, const task& b) { return a.title == b.title; }},
      {"description", [](json::writer& w, const task& t) { w.value(t.description); },
       [](const task& a, const task& b) { return a.description == b.description; }},
      {"completed", [](json::writer& w, const task& t) { w.value(t.completed); },
       [](const task& a, const task& b) { return a.completed == b.completed; }},
      {"completed_at", [](json::writer& w, const task& t) { stamp(w, t.completed_at); },
       [](const task& a, const task& b) { return a.completed_at == b.completed_at; }},
      {"priority", [](json::writer& w, const task& t) { w.value(to_string(t.prio)); },
       [](const task& a, const task& b) { return a.prio == b.prio; }},
      {"tags",
       [](json::writer& w, const task& t) {
         w.begin_array();
         for (const auto& tag : t.tags) {
           w.value(tag);
         }
         w.end_array();
       },
       [](const task& a, const task& b) { return a.tags == b.tags; }},
      {"due_at", [](json::writer& w, const task& t) { stamp(w, t.due_at); },
       [](const task& a, const task& b) { return a.due_at == b.due_at; }},
      {"timezone", [](json::writer& w, const task& t) { w.value(t.timezone); },
       [](const task& a, const task& b) { return a.timezone == b.timezone; }},
      {"recurrence", write_recurrence, [](const task& a, const task& b) { return a.rrule == b.rrule; }},
      {"reminders", [](json::writer& w, const task& t) { write_reminders(w, t.reminders); },
       [](const task& a, const task& b) { return same_reminders(a.reminders, b.reminders); }},
      {"series_id", [](json::writer& w, const task& t) { t.series_id ? w.value(*t.series_id) : w.null(); },
       [](const task& a, const task& b) { return a.series_id == b.series_id; }},
  };
  return all;
}

}  // namespace

std::string changes_json(const task* before, const task& after) {
  json::writer w;
  w.begin_object();
  for (const auto& f : fields()) {
    if (before != nullptr && f.same(*before, after)) {
      continue;
    }
    w.key(f.name).begin_array();
    before != nullptr ? f.write(w, *before) : void(w.null());
    f.write(w, after);
    w.end_array();
  }
  w.end_object();
  return w.take();
}

std::string summary(std::string_view kind, const task* before, const task& after) {
  std::string title = json::quote(after.title);
  if (kind == "created") {
    return "Created " + title;
  }
  if (kind == "completed") {
    return "Completed " + title;
  }
  if (kind == "reopened") {
    return "Reopened " + title;
  }
  if (kind == "deleted") {
    return "Deleted " + title;
  }
  std::string changed;
  for (const auto& f : fields()) {
    if (before != nullptr && !f.same(*before, after)) {
      changed += changed.empty() ? "" : ", ";
      changed += f.name;
    }
  }
  return "Updated " + title + (changed.empty() ? "" : " (" + changed + ")");
}

std::vector<db::param> event_params(std::string_view kind, const task* before, const task& after) {
  json::writer w;
  w.begin_object();
  w.key("task").raw(to_json(after));
  w.key("changes").raw(kind == "deleted" ? std::string("{}") : changes_json(before, after));
  w.end_object();
  return {after.user_id,
          uuid::v7(),
          "com.todo.task." + std::string(kind),
          after.id,
          time::format(time::now()),
          summary(kind, before, after),
          w.take()};
}

}  // namespace todo::tasks
