#pragma once
// The task as the module holds it, and its JSON form.
#include "reminder.hpp"
#include "todo/time.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace todo::json {
class writer;
}

namespace todo::tasks {

enum class priority : std::int16_t { none = 0, low, medium, high, urgent };

std::string_view to_string(priority p);
std::optional<priority> parse_priority(std::string_view s);

struct task {
  std::string id;
  std::string user_id;
  std::string title;
  std::string description;
  bool completed = false;
  std::optional<time::ms> completed_at;
  priority prio = priority::none;
  std::vector<std::string> tags;
  std::optional<time::ms> due_at;
  std::string timezone = "UTC";
  std::optional<std::string> rrule;  // canonical RRULE; set: the task recurs
  // The rule's DTSTART: the due date of the occurrence the rule was set on.
  // Kept by the server (not shown): dates keep its local time of day, and
  // COUNT counts from it.
  std::optional<time::ms> series_start;
  std::optional<std::string> series_id;
  std::vector<reminder> reminders;
  std::int64_t reminders_rev = 0;  // see migrations/005_reminders.sql; not shown
  std::int64_t version = 1;
  time::ms created_at{};
  time::ms updated_at{};
};

std::string to_json(const task& t);
// The `recurrence` member's value: {"rrule": "..."} or null.
void write_recurrence(json::writer& w, const task& t);
std::string etag(const task& t);

}  // namespace todo::tasks
