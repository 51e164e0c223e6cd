#pragma once
// The reminders module: follows the task events, schedules each reminder
// (the Dapr Jobs API when DAPR_HTTP_PORT is set, else an embedded scheduler
// in PostgreSQL), fires it once per fire_at, and delivers it to the user's
// WebSocket stream, e-mail and webhook, each with retries and an outcome event.
namespace todo {
struct app;
}

namespace todo::reminders {

// Subscribes to the bus, registers POST /job/{name}, adds `scheduler` to
// /ready. Before the bus starts.
void install(todo::app& a);

}  // namespace todo::reminders
