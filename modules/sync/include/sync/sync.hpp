#pragma once
// The sync module: live delivery of each user's events over WebSocket.
namespace todo {
struct app;
}

namespace todo::sync {

// Registers GET /api/v1/ws, follows the event log, and sets app.websocket.
void install(todo::app& a);

}  // namespace todo::sync
