#pragma once
// The activity module: the user's activity log and event stream, both read
// from the committed event log.
namespace todo {
struct app;
}

namespace todo::activity {

// Registers GET /api/v1/activity and GET /api/v1/events.
void install(todo::app& a);

}  // namespace todo::activity
