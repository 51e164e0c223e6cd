#pragma once
// The tasks module: task CRUD, completion and reopening under /api/v1/tasks.
namespace todo {
struct app;
}

namespace todo::tasks {

// Registers the routes.
void install(todo::app& a);

}  // namespace todo::tasks
