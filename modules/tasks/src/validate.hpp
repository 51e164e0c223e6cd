#pragma once
// Request bodies to typed changes, with every broken field listed. Pure.
#include "task.hpp"
#include "todo/errors.hpp"
#include "todo/recurrence_rules.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace todo::tasks {

// The fields a client sets. For a patch, an absent member is nullopt; a
// member sent as null is present with its cleared value (RFC 7396).
struct task_patch {
  std::optional<std::string> title;
  std::optional<std::string> description;
  std::optional<priority> prio;
  std::optional<std::vector<std::string>> tags;
  std::optional<std::optional<time::ms>> due_at;
  std::optional<std::string> timezone;
  std::optional<std::optional<std::string>> rrule;  // canonical; null: stops recurring
  std::optional<std::vector<reminder_input>> reminders;  // replaces the list; null: none
};

enum class body_mode { create, patch };

struct parsed_body {
  task_patch patch;
  field_errors errors;      // 422
  std::string bad_request;  // 400: not JSON, too deep
};

// `rules` normalizes `recurrence`; without it a recurrence is refused.
parsed_body parse_task_body(std::string_view body, body_mode mode, const recurrence_rules* rules = nullptr);

// What the whole task must satisfy after a create (before: null) or a
// patch, beyond each field: a recurring task needs due_at, and a rule the
// client sets must give the series a date after this occurrence. (A rule
// the server carried over, such as the last occurrence's COUNT=1, is not
// judged again.)
// Reminders (reminder.hpp): `before` needs due_at, and no new or moved
// reminder may be more than a minute past. `reminders` are the patch's, to
// name the item in errors.
field_errors check_task(const task* before, const task& after, const recurrence_rules* rules,
                        const std::vector<reminder_input>* reminders = nullptr, time::ms now = time::now());

// Applies a patch; returns true if any field changed.
bool apply(const task_patch& p, task& t);

// Field rules, exposed for reuse and tests. Each returns an empty string when
// the value is fine, else the message.
std::string check_title(std::string& title);  // trims in place
std::string check_description(const std::string& d);
std::string check_tags(std::vector<std::string>& tags);  // lower-cases in place
bool valid_timezone(const std::string& name);

}  // namespace todo::tasks
