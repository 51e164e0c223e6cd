#pragma once
// A task's reminders as the tasks module holds them: what the client set
// (`at`, or `before` due_at), and the id, fire_at and state the server adds.
// The reminders module schedules and delivers them from the task's events;
// delivery outcomes come back as reminder events and set `state`. Pure.
#include "todo/errors.hpp"
#include "todo/time.hpp"

#include <simdjson.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace todo::json {
class writer;
}

namespace todo::tasks {

inline constexpr std::size_t max_reminders = 10;
// A reminder set less than this far in the past fires at once; further
// back it is refused.
inline constexpr std::chrono::minutes reminder_grace{1};

struct reminder {
  std::string id;
  std::optional<time::ms> at;
  std::optional<std::string> before;   // the ISO 8601 duration as the client wrote it
  std::chrono::milliseconds offset{};  // `before`, parsed
  time::ms fire_at{};
  std::string state = "scheduled";     // scheduled, sent, failed, cancelled

  bool operator==(const reminder&) const = default;
};

// What a client sends for one reminder. `id` keeps an existing reminder
// (and its state) when its time is unchanged.
struct reminder_input {
  std::optional<std::string> id;
  std::optional<time::ms> at;
  std::optional<std::string> before;
  std::chrono::milliseconds offset{};
};

// "PT15M", "P1D", "P1DT2H", "PT90S", "P2W": days, hours, minutes, seconds
// (fractions allowed on seconds), or weeks alone; at most 366 days. Years
// and months have no fixed length and are refused.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view s);

// The `reminders` member of a body: an array of at most 10 objects, each
// with exactly one of `at` and `before`. Errors name the item:
// "reminders[2].before".
std::variant<std::vector<reminder_input>, field_errors> parse_reminders(const simdjson::dom::element& v);

// The reminders a task has after `inputs` replace `current` (ids kept when
// asked for or when the same time is set again; states kept when fire_at is
// unchanged). `due` is the task's due date; a `before` without it is left
// out and reported by check_reminders.
std::vector<reminder> resolve(const std::vector<reminder_input>& inputs, const std::vector<reminder>& current,
                              const std::optional<time::ms>& due);
// fire_at of each `before` reminder again after due_at moved; a reminder
// whose time moved is scheduled again.
void retime(std::vector<reminder>& rs, const std::optional<time::ms>& due);

// What a task's reminders must satisfy after a change: `before` needs a due
// date, and a reminder whose time is new or moved may not be more than a
// minute in the past. `previous` are the reminders before the change.
field_errors check_reminders(const std::vector<reminder_input>* inputs, const std::vector<reminder>& previous,
                             const std::vector<reminder>& after, const std::optional<time::ms>& due, time::ms now);

// Completing cancels what has not fired; reopening schedules again what was
// cancelled and is not past.
void cancel_pending(std::vector<reminder>& rs);
void restore_cancelled(std::vector<reminder>& rs, time::ms now);
// A successor's reminders: new ids, shifted by the series' step (`before`
// keeps its offset from the new due date), cancelled when already past.
std::vector<reminder> shifted(const std::vector<reminder>& rs, time::ms old_due, time::ms new_due, time::ms now);

void write_reminders(json::writer& w, const std::vector<reminder>& rs);
// The stored JSON (the same as the client's form) back into reminders.
std::vector<reminder> read_reminders(std::string_view stored);

}  // namespace todo::tasks
