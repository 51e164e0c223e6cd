#include "messages.hpp"

#include "todo/crypto.hpp"
#include "todo/json.hpp"

#include <simdjson.h>

namespace todo::reminders {
namespace {

void write_reminder(json::writer& w, const reminder_ref& r, std::string_view state) {
  w.key("reminder").begin_object();
  w.key("id").value(r.id);
  w.key("task_id").value(r.task_id);
  w.key("fire_at").value(time::format(r.fire_at));
  w.key("state").value(state);
  w.end_object();
  w.key("task").begin_object().key("id").value(r.task_id).key("title").value(r.title).end_object();
}

// Firing ids are <reminder id>.<fire_at ms>: stable for one firing, new
// when the reminder moves.
std::string firing_id(const reminder_ref& r) {
  return r.id + "." + std::to_string(time::to_unix_ms(r.fire_at));
}

}  // namespace

std::string fire_job_name(std::string_view reminder_id) { return "r-" + std::string(reminder_id); }

std::string delivery_job_name(std::string_view reminder_id, std::string_view channel, int attempt) {
  return "d-" + std::string(reminder_id) + "-" + std::string(channel) + "-" + std::to_string(attempt);
}

std::string encode(const job_data& d) {
  json::writer w;
  w.begin_object();
  w.key("kind").value(d.kind);
  w.key("reminder").value(d.r.id);
  w.key("user").value(d.r.user);
  w.key("task").value(d.r.task_id);
  w.key("fire_at").value(time::format(d.r.fire_at));
  if (d.kind == "deliver") {
    w.key("channel").value(d.channel);
    w.key("attempt").value(static_cast<std::int64_t>(d.attempt));
  }
  w.end_object();
  return w.take();
}

std::optional<job_data> decode(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(json.data(), json.size()).get(root) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  job_data d;
  std::string_view kind, id, user, task, fire_at;
  if (root["kind"].get(kind) != simdjson::SUCCESS || root["reminder"].get(id) != simdjson::SUCCESS ||
      root["user"].get(user) != simdjson::SUCCESS || root["task"].get(task) != simdjson::SUCCESS ||
      root["fire_at"].get(fire_at) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  auto at = time::parse_rfc3339(fire_at);
  if (!at || (kind != "fire" && kind != "deliver")) {
    return std::nullopt;
  }
  d.kind = std::string(kind);
  d.r = {std::string(id), std::string(user), std::string(task), *at, {}};
  if (d.kind == "deliver") {
    std::string_view channel;
    // protojson re-encodes numbers as doubles.
    double attempt = 0;
    if (root["channel"].get(channel) != simdjson::SUCCESS || (channel != "email" && channel != "webhook")) {
      return std::nullopt;
    }
    if (root["attempt"].get(attempt) != simdjson::SUCCESS) {
      std::int64_t n = 0;
      if (root["attempt"].get(n) != simdjson::SUCCESS) {
        return std::nullopt;
      }
      attempt = static_cast<double>(n);
    }
    if (attempt < 1 || attempt > 1000) {
      return std::nullopt;
    }
    d.channel = std::string(channel);
    d.attempt = static_cast<int>(attempt);
  }
  return d;
}

std::chrono::milliseconds retry_delay(int failed_attempt, std::chrono::milliseconds base, std::mt19937_64& rng) {
  constexpr std::chrono::milliseconds cap = std::chrono::hours(1);
  auto d = base;
  for (int i = 1; i < failed_attempt && d < cap; ++i) {
    d *= 2;
  }
  d = std::min(d, cap);
  std::uniform_int_distribution<std::int64_t> draw(d.count() / 2, d.count());
  return std::chrono::milliseconds(draw(rng));
}

std::string event_data(const reminder_ref& r, std::string_view state, std::string_view channel, int attempts,
                       std::string_view error) {
  json::writer w;
  w.begin_object();
  write_reminder(w, r, state);
  if (!channel.empty()) {
    w.key("channel").value(channel);
    w.key("attempts").value(static_cast<std::int64_t>(attempts));
    if (!error.empty()) {
      w.key("error").value(error);
    }
  }
  w.end_object();
  return w.take();
}

webhook_message webhook_payload(const reminder_ref& r, time::ms now) {
  webhook_message m;
  m.id = firing_id(r);
  m.timestamp = time::to_unix_ms(now) / 1000;
  json::writer w;
  w.begin_object();
  w.key("type").value("com.todo.reminder.due");
  w.key("timestamp").value(time::format(now));
  w.key("data").begin_object();
  write_reminder(w, r, "sent");
  w.end_object();
  w.end_object();
  m.body = w.take();
  return m;
}

std::string webhook_signature(std::string_view secret, const webhook_message& m) {
  auto signed_content = m.id + "." + std::to_string(m.timestamp) + "." + m.body;
  auto mac = crypto::hmac_sha256(secret, signed_content);
  return "v1," + (mac ? crypto::b64_encode(crypto::as_chars(*mac)) : std::string{});
}

mail_text mail_for(const reminder_ref& r, std::string_view from) {
  mail_text m;
  m.subject = "Reminder: " + r.title;
  m.body = "Reminder: " + r.title + "\r\n\r\nDue for " + time::format(r.fire_at) + ".\r\nTask: " + r.task_id + "\r\n";
  auto at = from.find('@');
  m.message_id = firing_id(r) + (at == std::string_view::npos ? "@todo-server" : std::string(from.substr(at)));
  return m;
}

}  // namespace todo::reminders
