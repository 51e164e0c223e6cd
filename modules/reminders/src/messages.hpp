#pragma once
// The reminders module's pure parts: job names and payloads, the retry
// schedule, event data, and what goes to each channel. No I/O.
#include "todo/time.hpp"

#include <chrono>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace todo::reminders {

// A reminder as the module keeps it.
struct reminder_ref {
  std::string id;
  std::string user;
  std::string task_id;
  time::ms fire_at{};
  std::string title;
};

// Jobs: "r-<reminder id>" fires a reminder; "d-<reminder id>-<channel>-<n>"
// is try n of a channel (a name per try, so a new try is never confused with
// the one that scheduled it). Both fit Dapr's rule ^[a-z0-9][a-z0-9-]{0,62}$.
std::string fire_job_name(std::string_view reminder_id);
std::string delivery_job_name(std::string_view reminder_id, std::string_view channel, int attempt);

struct job_data {
  std::string kind;  // "fire" or "deliver"
  reminder_ref r;
  std::string channel;  // deliver only
  int attempt = 1;      // deliver only
};
std::string encode(const job_data& d);
// nullopt for a payload this module did not write.
std::optional<job_data> decode(std::string_view json);

// Exponential backoff with full jitter: attempt 1 failed -> about base,
// then 2x, 4x, ... capped at an hour; a uniform draw in [d/2, d].
std::chrono::milliseconds retry_delay(int failed_attempt, std::chrono::milliseconds base, std::mt19937_64& rng);

// The `data` of the reminder events: {"reminder": {...}, "task": {...}, ...}.
// `state` is the reminder's state as the task shows it.
std::string event_data(const reminder_ref& r, std::string_view state, std::string_view channel = {},
                       int attempts = 0, std::string_view error = {});

// Webhook delivery, in the style of Standard Webhooks: the body, and the
// three headers (webhook-signature only when the user set a secret).
struct webhook_message {
  std::string id;  // stable across retries of one firing
  std::string body;
  std::int64_t timestamp = 0;  // Unix seconds
};
webhook_message webhook_payload(const reminder_ref& r, time::ms now);
// "v1,<base64 of HMAC-SHA256(secret, id.timestamp.body)>".
std::string webhook_signature(std::string_view secret, const webhook_message& m);

struct mail_text {
  std::string subject;
  std::string body;
  std::string message_id;
};
mail_text mail_for(const reminder_ref& r, std::string_view from);

}  // namespace todo::reminders
