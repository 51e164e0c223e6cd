// The e-mail and webhook channels of a fired reminder. Each attempt is
// recorded in the state store (key delivery-<reminder>-<fire_at ms>:
// attempts, last status and error per channel); the outcome is written once
// in PostgreSQL with its event, guarded by reminder_outcomes.
#include "module.hpp"

#include "todo/dapr.hpp"
#include "todo/db.hpp"
#include "todo/event_log.hpp"
#include "todo/events.hpp"
#include "todo/json.hpp"
#include "todo/log.hpp"
#include "todo/metrics.hpp"
#include "todo/outbound.hpp"
#include "todo/state_store.hpp"
#include "todo/uuid.hpp"

#include <simdjson.h>

namespace todo::reminders {
namespace {

const db::statement load_target{
    "rem_target",
    "SELECT r.title, s.email, s.webhook_url, s.webhook_secret,"
    " EXISTS (SELECT 1 FROM reminder_outcomes o WHERE o.reminder_id = r.id AND o.fire_at = r.fire_at"
    " AND o.channel = $3),"
    " EXISTS (SELECT 1 FROM reminder_outcomes o WHERE o.reminder_id = r.id AND o.fire_at = r.fire_at"
    " AND o.outcome = 'failed')"
    " FROM reminders r LEFT JOIN user_settings s ON s.user_id = r.user_id"
    " WHERE r.id = $1::uuid AND r.fire_at = $2::timestamptz AND r.state = 'fired'"};

// The outcome, once: the marker row guards the event.
const db::statement settle_stmt{
    "rem_settle",
    "WITH marked AS (INSERT INTO reminder_outcomes (reminder_id, fire_at, channel, outcome)"
    " VALUES ($8::uuid, $9::timestamptz, $10, $11) ON CONFLICT DO NOTHING RETURNING 1), "
    APPEND_EVENT_FROM("marked")};
const db::statement close_stmt{
    "rem_close",
    "UPDATE reminders SET open_deliveries = false, updated_at = now() WHERE id = $1::uuid AND fire_at = $2::timestamptz"
    " AND cardinality(channels) <= (SELECT count(*) FROM reminder_outcomes o"
    " WHERE o.reminder_id = $1::uuid AND o.fire_at = $2::timestamptz)"};

std::string record_key(const reminder_ref& r) {
  return "delivery-" + r.id + "-" + std::to_string(time::to_unix_ms(r.fire_at));
}

struct attempt_record {
  int attempts = 0;
  long status = 0;
  std::string error;
  std::string state;  // "retrying", "sent", "failed"
  std::int64_t next_at = 0;
};

// The record with this channel's entry replaced; other channels kept.
std::string merge_record(std::string_view stored, const reminder_ref& r, std::string_view channel,
                         const attempt_record& a) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  bool have = !stored.empty() && parser.parse(stored.data(), stored.size()).get(root) == simdjson::SUCCESS;
  json::writer w;
  w.begin_object();
  w.key("reminder").value(r.id);
  w.key("user").value(r.user);
  w.key("task").value(r.task_id);
  w.key("fire_at").value(time::format(r.fire_at));
  w.key("channels").begin_object();
  simdjson::dom::object channels;
  if (have && root["channels"].get(channels) == simdjson::SUCCESS) {
    for (auto m : channels) {
      if (m.key != channel) {
        w.key(m.key).raw(simdjson::minify(m.value));
      }
    }
  }
  w.key(channel).begin_object();
  w.key("attempts").value(static_cast<std::int64_t>(a.attempts));
  w.key("state").value(a.state);
  w.key("last_status").value(static_cast<std::int64_t>(a.status));
  w.key("last_error").value(a.error);
  w.key("next_at");
  a.next_at != 0 ? w.value(time::format(time::from_unix_ms(a.next_at))) : w.null();
  w.key("updated_at").value(time::format(time::now()));
  w.end_object();
  w.end_object();
  w.end_object();
  return w.take();
}

// Read-modify-write with the ETag, so two replicas recording attempts of
// one firing keep both channels.
asio::awaitable<void> record(module_ptr m, reminder_ref r, std::string channel, attempt_record a) {
  auto key = record_key(r);
  for (int i = 0; i < 5; ++i) {
    auto got = co_await m->store->get(key);
    if (!got) {
      log::warn("reminders", "delivery record not readable", {{"error", got.error().message()}});
      co_return;
    }
    std::string stored = *got ? (*got)->value : std::string{};
    std::string etag = *got ? (*got)->etag : std::string{};
    auto value = merge_record(stored, r, channel, a);
    auto saved = co_await m->store->save(key, std::move(value), std::move(etag));
    if (saved) {
      co_return;
    }
    if (saved.error() != dapr::errc::conflict) {
      log::warn("reminders", "delivery record not written", {{"error", saved.error().message()}});
      co_return;
    }
  }
  log::warn("reminders", "delivery record contended; gave up", {{"key", std::string_view(key)}});
}

asio::awaitable<bool> settle(module_ptr m, const reminder_ref& r, const std::string& channel, bool ok,
                             bool failed_before, int attempts, const std::string& error) {
  auto state = ok && !failed_before ? "sent" : "failed";
  auto type = ok ? "com.todo.reminder.sent" : "com.todo.reminder.failed";
  auto summary = std::string(ok ? "Reminder sent by " : "Reminder not delivered by ") + channel + ": " + r.title;
  std::vector<db::query> qs;
  qs.push_back({&settle_stmt,
                {r.user, uuid::v7(), type, r.task_id, time::format(time::now()), summary,
                 event_data(r, state, channel, attempts, error), r.id, time::format(r.fire_at), channel,
                 ok ? "sent" : "failed"}});
  qs.push_back({&close_stmt, {r.id, time::format(r.fire_at)}});
  auto done = co_await m->db->execute(std::move(qs));
  if (!done) {
    log::warn("reminders", "outcome not recorded; will retry", {{"error", done.error().message()}});
    co_return false;
  }
  (ok ? m->sent : m->failed).inc();
  m->bus.notify();
  co_return true;
}

}  // namespace

std::chrono::milliseconds module::next_delay(int failed_attempt) {
  std::lock_guard lock(*rng_mu);
  return retry_delay(failed_attempt, notify.retry_base, rng);
}

asio::awaitable<bool> deliver(module_ptr m, job_data d) {
  db::query q{&load_target, {d.r.id, time::format(d.r.fire_at), d.channel}};
  auto loaded = co_await m->db->execute_one(std::move(q));
  if (!loaded) {
    co_return false;
  }
  if (loaded->size() == 0 || loaded->boolean(0, 4)) {
    co_return true;  // moved, cancelled, or this channel is settled
  }
  d.r.title = std::string(loaded->text(0, 0));
  bool failed_before = loaded->boolean(0, 5);
  outbound::outcome out;
  if (d.channel == "email") {
    if (loaded->is_null(0, 1) || m->notify.smtp_url.empty()) {
      out = {false, false, 0, "no e-mail address or SMTP server configured any more"};
    } else {
      auto text = mail_for(d.r, m->notify.smtp_from);
      outbound::mail mail{.smtp_url = m->notify.smtp_url,
                          .from = m->notify.smtp_from,
                          .to = std::string(loaded->text(0, 1)),
                          .subject = std::move(text.subject),
                          .text = std::move(text.body),
                          .message_id = std::move(text.message_id)};
      auto call = m->sender->send(std::move(mail));
      out = co_await std::move(call);
    }
  } else {
    if (loaded->is_null(0, 2)) {
      out = {false, false, 0, "no webhook configured any more"};
    } else {
      auto msg = webhook_payload(d.r, time::now());
      outbound::webhook_request req{.url = std::string(loaded->text(0, 2)),
                                    .body = msg.body,
                                    .allow_insecure = m->notify.webhook_allow_insecure};
      req.headers.push_back({"webhook-id", msg.id});
      req.headers.push_back({"webhook-timestamp", std::to_string(msg.timestamp)});
      if (!loaded->is_null(0, 3)) {
        req.headers.push_back({"webhook-signature", webhook_signature(loaded->text(0, 3), msg)});
      }
      auto call = m->sender->post(std::move(req));
      out = co_await std::move(call);
    }
  }
  attempt_record a{.attempts = d.attempt, .status = out.status, .error = out.error};
  bool last = !out.ok && (!out.retryable || d.attempt >= m->notify.max_attempts);
  if (out.ok || last) {
    a.state = out.ok ? "sent" : "failed";
    co_await record(m, d.r, d.channel, a);
    if (!out.ok) {
      log::warn("reminders", "delivery dead-lettered",
                {{"reminder", std::string_view(d.r.id)}, {"channel", std::string_view(d.channel)},
                 {"attempts", d.attempt}, {"error", std::string_view(out.error)}});
    }
    auto settled = co_await settle(m, d.r, d.channel, out.ok, failed_before, d.attempt, out.error);
    co_return settled;
  }
  auto delay = m->next_delay(d.attempt);
  a.state = "retrying";
  a.next_at = time::to_unix_ms(time::now()) + delay.count();
  co_await record(m, d.r, d.channel, a);
  m->retried.inc();
  log::info("reminders", "delivery failed; will retry",
            {{"reminder", std::string_view(d.r.id)}, {"channel", std::string_view(d.channel)},
             {"attempt", d.attempt}, {"retry_in_ms", static_cast<std::int64_t>(delay.count())},
             {"error", std::string_view(out.error)}});
  job_data next = d;
  next.attempt = d.attempt + 1;
  job retry{delivery_job_name(d.r.id, d.channel, next.attempt), time::from_unix_ms(a.next_at), encode(next)};
  auto scheduled = co_await m->jobs->schedule(std::move(retry));
  co_return scheduled.has_value();
}

}  // namespace todo::reminders
