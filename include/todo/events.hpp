#pragma once
// The committed event log: what an event is, its CloudEvents 1.0 form, and
// the SQL that appends one inside a writer's own statement.
#include "todo/time.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace todo {

struct event {
  std::int64_t pos = 0;  // global log position
  std::string user;
  std::int64_t seq = 0;  // per user, gap-free
  std::string id;        // CloudEvent id, stable across redeliveries
  std::string type;      // "com.todo.task.created", ...
  std::string subject;   // the task id
  time::ms time{};
  std::string summary;   // for the activity log
  std::string data;      // encoded JSON: {"task": {...}, "changes": {...}}
};

// Structured-mode CloudEvents 1.0 JSON.
std::string to_cloudevent(const event& e);

inline constexpr std::string_view event_source = "/todo-server";
inline constexpr std::string_view cloudevents_content_type = "application/cloudevents+json";

// Appends one event for the rows a writer's CTE named `changed` yields (one
// row: the change happened; none: nothing is appended and no sequence
// number is used). The writer's statement reserves parameters $1..$7:
// $1 user, $2 event id, $3 type, $4 subject, $5 time, $6 summary, $7 data.
// The per-user sequence row is locked before the event gets its position,
// so one user's events have increasing positions in commit order.
#define APPEND_EVENT_FROM(changed)                                                                          \
  "seq_row AS (INSERT INTO user_sequences (user_id, last_seq) SELECT $1, 1 FROM " changed                       \
  " ON CONFLICT (user_id) DO UPDATE SET last_seq = user_sequences.last_seq + 1 RETURNING last_seq)"           \
  " INSERT INTO events (user_id, seq, id, type, subject, time, summary, data)"                                 \
  " SELECT $1, last_seq, $2::uuid, $3, $4, $5::timestamptz, $6, $7 FROM seq_row RETURNING seq"

}  // namespace todo
