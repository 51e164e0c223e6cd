#pragma once
// The event each task change appends to the log. Pure.
#include "task.hpp"
#include "todo/db.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace todo::tasks {

// "created", "updated", "completed", "reopened", "deleted".
// `before` is null for a creation; for a deletion `after` is the task as it was.
std::vector<db::param> event_params(std::string_view kind, const task* before, const task& after);

// {"field": [old, new], ...} for every client-visible field that differs;
// for a creation, every field from null.
std::string changes_json(const task* before, const task& after);
std::string summary(std::string_view kind, const task* before, const task& after);

}  // namespace todo::tasks
