// Following the task events, firing, reconciliation, and POST /job/{name}.
#include "reminders/reminders.hpp"

#include "module.hpp"
#include "parallel.hpp"

#include "todo/app.hpp"
#include "todo/crypto.hpp"
#include "todo/dapr.hpp"
#include "todo/db.hpp"
#include "todo/event_log.hpp"
#include "todo/events.hpp"
#include "todo/json.hpp"
#include "todo/log.hpp"
#include "todo/metrics.hpp"
#include "todo/outbound.hpp"
#include "todo/problem.hpp"
#include "todo/router.hpp"
#include "todo/state_store.hpp"
#include "todo/uuid.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <simdjson.h>

#include <algorithm>

namespace todo::reminders {
namespace {

using namespace std::chrono_literals;

// --- following the tasks -------------------------------------------------

// The task's scheduled reminders ($3 ids, $4 fire_at) are scheduled at that
// time; its other scheduled ones are cancelled. An event older than the one
// that last set a row ($5 its sequence) changes nothing, so a replay after a
// crash cannot move a reminder back to a time it already fired at.
const db::statement follow_stmt{
    "rem_follow",
    "WITH want AS (SELECT * FROM unnest($3::uuid[], $4::timestamptz[]) AS w(id, fire_at)),"
    " up AS (INSERT INTO reminders (id, user_id, task_id, fire_at, state, source_seq, title)"
    " SELECT id, $1, $2::uuid, fire_at, 'scheduled', $5, $6 FROM want"
    " ON CONFLICT (id) DO UPDATE SET fire_at = excluded.fire_at, state = 'scheduled', source_seq = excluded.source_seq,"
    " title = excluded.title, job_synced = false, announced = false, channels = '{}', open_deliveries = false,"
    " fired_at = NULL, updated_at = now()"
    " WHERE reminders.source_seq < excluded.source_seq"
    " AND (reminders.fire_at <> excluded.fire_at OR reminders.state = 'cancelled') RETURNING 1)"
    " UPDATE reminders SET state = 'cancelled', source_seq = $5, job_synced = false, updated_at = now()"
    " WHERE task_id = $2::uuid AND user_id = $1 AND state = 'scheduled' AND source_seq < $5"
    " AND NOT (id = ANY($3::uuid[]))"};
const db::statement retitle_stmt{
    "rem_retitle",
    "UPDATE reminders SET title = $3 WHERE task_id = $2::uuid AND user_id = $1 AND title <> $3"};
// com.todo.reminder.scheduled, once per fire_at.
const db::statement announce_stmt{
    "rem_announce",
    "WITH changed AS (UPDATE reminders SET announced = true WHERE id = $8::uuid AND fire_at = $9::timestamptz"
    " AND state = 'scheduled' AND NOT announced RETURNING id), " APPEND_EVENT_FROM("changed")};

const db::statement unsynced_stmt{
    "rem_unsynced",
    "SELECT id, user_id, task_id, floor(extract(epoch FROM fire_at) * 1000)::int8, state FROM reminders"
    " WHERE NOT job_synced ORDER BY updated_at LIMIT $1"};
// Only rows still as they were read: one moved meanwhile stays unsynced.
const db::statement synced_stmt{
    "rem_synced",
    "UPDATE reminders r SET job_synced = true FROM unnest($1::uuid[], $2::int8[], $3::text[]) AS s(id, fire_at, state)"
    " WHERE r.id = s.id AND floor(extract(epoch FROM r.fire_at) * 1000)::int8 = s.fire_at AND r.state = s.state"};

// --- firing --------------------------------------------------------------

const db::statement fire_target_stmt{
    "rem_fire_target",
    "SELECT r.id, r.user_id, r.task_id, floor(extract(epoch FROM r.fire_at) * 1000)::int8, r.title,"
    " s.email IS NOT NULL, s.webhook_url IS NOT NULL"
    " FROM unnest($1::uuid[], $2::timestamptz[]) AS w(id, fire_at)"
    " JOIN reminders r ON r.id = w.id AND r.fire_at = w.fire_at"
    " LEFT JOIN user_settings s ON s.user_id = r.user_id WHERE r.state = 'scheduled'"
    // Never early: a trigger well before fire_at (a forged call to /job, a
    // clock far off) fires nothing; reconciliation fires it when it is due.
    " AND r.fire_at <= now() + interval '1 second'"};
// Once per fire_at: only a scheduled row at that time fires.
const db::statement fire_stmt{
    "rem_fire",
    "WITH changed AS (UPDATE reminders SET state = 'fired', fired_at = now(), channels = $10::text[],"
    " open_deliveries = $11::bool, job_synced = true, updated_at = now()"
    " WHERE id = $8::uuid AND fire_at = $9::timestamptz AND state = 'scheduled' RETURNING id), "
    APPEND_EVENT_FROM("changed")};

// --- reconciliation ------------------------------------------------------

const db::statement overdue_stmt{
    "rem_overdue",
    "SELECT id, user_id, task_id, floor(extract(epoch FROM fire_at) * 1000)::int8 FROM reminders"
    " WHERE state = 'scheduled' AND fire_at < now() - $1::interval ORDER BY fire_at LIMIT 1000"};
const db::statement open_stmt{
    "rem_open",
    "SELECT r.id, r.user_id, r.task_id, floor(extract(epoch FROM r.fire_at) * 1000)::int8, c.channel"
    " FROM reminders r, unnest(r.channels) AS c(channel)"
    " WHERE r.open_deliveries AND r.fired_at < now() - $1::interval AND NOT EXISTS (SELECT 1 FROM reminder_outcomes o"
    " WHERE o.reminder_id = r.id AND o.fire_at = r.fire_at AND o.channel = c.channel) LIMIT 1000"};

struct task_view {
  std::string id;
  std::string title;
  std::vector<std::pair<std::string, std::string>> scheduled;  // id, fire_at
};

std::optional<task_view> read_task(simdjson::dom::parser& parser, const event& e) {
  simdjson::dom::element root;
  if (parser.parse(e.data).get(root) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  task_view t;
  auto id = uuid::normalize(e.subject);
  if (!id) {
    return std::nullopt;
  }
  t.id = *id;
  std::string_view title;
  if (root["task"]["title"].get(title) == simdjson::SUCCESS) {
    t.title = std::string(title);
  }
  if (e.type == "com.todo.task.deleted") {
    return t;  // nothing stays scheduled
  }
  simdjson::dom::array rs;
  if (root["task"]["reminders"].get(rs) != simdjson::SUCCESS) {
    return t;
  }
  for (auto r : rs) {
    std::string_view id, fire_at, state;
    if (r["id"].get(id) == simdjson::SUCCESS && r["fire_at"].get(fire_at) == simdjson::SUCCESS &&
        r["state"].get(state) == simdjson::SUCCESS && state == "scheduled" && uuid::normalize(id) &&
        time::parse_rfc3339(fire_at)) {
      t.scheduled.emplace_back(std::string(id), std::string(fire_at));
    }
  }
  return t;
}

// The scheduler made to hold what the rows say: a job per scheduled
// reminder, none for a cancelled one. Rows it could not reach stay unsynced
// for the next round.
asio::awaitable<void> sync_jobs(module_ptr m) {
  for (int round = 0; round < 100; ++round) {
    db::query q{&unsynced_stmt, {"1000"}};
    auto rows = co_await m->db->execute_one(std::move(q));
    if (!rows || rows->size() == 0) {
      co_return;
    }
    // The rows' keys, split into jobs to schedule and jobs to delete.
    std::vector<int> scheduled_rows, cancelled_rows;
    std::vector<job> to_schedule;
    std::vector<std::string> to_cancel;
    for (int i = 0; i < rows->size(); ++i) {
      reminder_ref r{std::string(rows->text(i, 0)), std::string(rows->text(i, 1)), std::string(rows->text(i, 2)),
                     time::from_unix_ms(rows->integer(i, 3)), {}};
      if (rows->text(i, 4) == "scheduled") {
        job_data d{"fire", r, {}, 1};
        to_schedule.push_back({fire_job_name(r.id), r.fire_at, encode(d)});
        scheduled_rows.push_back(i);
      } else {
        to_cancel.push_back(fire_job_name(r.id));
        cancelled_rows.push_back(i);
      }
    }
    auto scheduling = m->jobs->schedule_many(std::move(to_schedule));
    auto scheduled = co_await std::move(scheduling);
    auto cancelling = m->jobs->cancel_many(std::move(to_cancel));
    auto cancelled = co_await std::move(cancelling);
    std::vector<std::string> ids, times, states;
    auto keep = [&](const std::vector<int>& which, const std::vector<bool>& ok) {
      for (std::size_t k = 0; k < which.size(); ++k) {
        if (ok[k]) {
          ids.emplace_back(rows->text(which[k], 0));
          times.push_back(std::to_string(rows->integer(which[k], 3)));
          states.emplace_back(rows->text(which[k], 4));
        }
      }
    };
    keep(scheduled_rows, scheduled);
    keep(cancelled_rows, cancelled);
    if (ids.empty()) {
      co_return;  // the scheduler is away: reconciliation tries again
    }
    db::query mark{&synced_stmt, {db::array_literal(ids), db::array_literal(times), db::array_literal(states)}};
    auto marked = co_await m->db->execute_one(std::move(mark));
    if (!marked) {
      co_return;
    }
  }
}

asio::awaitable<result<void>> follow(module_ptr m, std::vector<event> batch) {
  simdjson::dom::parser parser;
  std::vector<db::query> qs;
  // By user (each user's events stay in order): the announcements lock
  // sequence rows in the same order as firing does (fire_many).
  std::stable_sort(batch.begin(), batch.end(), [](const event& a, const event& b) { return a.user < b.user; });
  for (const auto& e : batch) {
    if (!e.type.starts_with("com.todo.task.")) {
      continue;
    }
    auto t = read_task(parser, e);
    if (!t) {
      log::warn("reminders", "task event without a task", {{"event", std::string_view(e.id)}});
      continue;
    }
    std::vector<std::string> ids, times;
    for (const auto& [id, at] : t->scheduled) {
      ids.push_back(id);
      times.push_back(at);
    }
    qs.push_back({&follow_stmt, {e.user, t->id, db::array_literal(ids), db::array_literal(times), std::to_string(e.seq), t->title}});
    qs.push_back({&retitle_stmt, {e.user, t->id, t->title}});
    for (const auto& [id, at] : t->scheduled) {
      auto when = time::parse_rfc3339(at);
      reminder_ref r{id, e.user, t->id, when.value_or(time::ms{}), t->title};
      qs.push_back({&announce_stmt,
                    {e.user, uuid::v7(), "com.todo.reminder.scheduled", t->id, time::format(time::now()),
                     "Reminder scheduled for " + at + ": " + t->title, event_data(r, "scheduled"), id, at}});
    }
  }
  if (qs.empty()) {
    co_return result<void>{};
  }
  auto r = co_await m->db->execute(std::move(qs));
  if (!r) {
    co_return r.error();
  }
  m->bus.notify();
  co_await sync_jobs(m);
  co_return result<void>{};
}

// Fires reminders, each once per fire_at: the due event on the user's
// stream (and so on Kafka and every WebSocket), then its channels. One
// query finds them, one pipeline fires them all. false for every one when
// the database could not be reached.
asio::awaitable<bool> fire_many(module_ptr m, std::vector<reminder_ref> rs) {
  if (rs.empty()) {
    co_return true;
  }
  std::vector<std::string> ids, times;
  for (const auto& r : rs) {
    ids.push_back(r.id);
    times.push_back(time::format(r.fire_at));
  }
  db::query q{&fire_target_stmt, {db::array_literal(ids), db::array_literal(times)}};
  auto target = co_await m->db->execute_one(std::move(q));
  if (!target) {
    co_return false;
  }
  struct firing {
    reminder_ref r;
    std::vector<std::string> channels;
  };
  std::vector<firing> firings;
  std::vector<db::query> qs;
  for (int i = 0; i < target->size(); ++i) {
    firing f;
    f.r = {std::string(target->text(i, 0)), std::string(target->text(i, 1)), std::string(target->text(i, 2)),
           time::from_unix_ms(target->integer(i, 3)), std::string(target->text(i, 4))};
    if (target->boolean(i, 5) && !m->notify.smtp_url.empty()) {
      f.channels.push_back("email");
    }
    if (target->boolean(i, 6)) {
      f.channels.push_back("webhook");
    }
    firings.push_back(std::move(f));
  }
  // Never early: a trigger ahead of fire_at (the embedded scheduler hands
  // jobs over a few milliseconds ahead, a sidecar's clock may run fast)
  // waits it out here, after the lookup, so the lookup's round trip is not
  // part of the lateness. The lookup refused anything more than 1 s ahead.
  auto latest = time::ms{};
  for (const auto& f : firings) {
    latest = std::max(latest, f.r.fire_at);
  }
  co_await pause(latest - time::now());
  // Each event locks its user's sequence row: every transaction that takes
  // several takes them in the same order, so concurrent batches wait for
  // each other instead of deadlocking.
  std::stable_sort(firings.begin(), firings.end(), [](const firing& a, const firing& b) { return a.r.user < b.r.user; });
  for (const auto& f : firings) {
    const auto& r = f.r;
    qs.push_back({&fire_stmt,
                  {r.user, uuid::v7(), "com.todo.reminder.due", r.task_id, time::format(time::now()),
                   "Reminder due: " + r.title, event_data(r, "sent"), r.id, time::format(r.fire_at),
                   db::array_literal(f.channels), f.channels.empty() ? "f" : "t"}});
  }
  if (qs.empty()) {
    co_return true;  // moved, cancelled or already fired
  }
  auto fired = co_await m->db->execute(std::move(qs));
  if (!fired) {
    co_return false;
  }
  m->bus.notify();
  for (std::size_t i = 0; i < firings.size(); ++i) {
    if ((*fired)[i].size() == 0) {
      continue;  // another replica fired it
    }
    m->fired.inc();
    for (const auto& c : firings[i].channels) {
      job_data d{"deliver", firings[i].r, c, 1};
      asio::co_spawn(m->io, deliver(m, std::move(d)), asio::detached);
    }
  }
  co_return true;
}

asio::awaitable<std::vector<bool>> run_jobs(module_ptr m, std::vector<due_job> jobs) {
  auto ok = std::make_shared<std::vector<bool>>(jobs.size(), true);
  std::vector<reminder_ref> to_fire;
  std::vector<std::size_t> fire_index;
  auto deliveries = std::make_shared<std::vector<std::pair<std::size_t, job_data>>>();
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    auto d = decode(jobs[i].data);
    if (!d) {
      log::warn("reminders", "job with a payload this server did not write",
                {{"job", std::string_view(jobs[i].name)}});
    } else if (d->kind == "fire") {
      to_fire.push_back(std::move(d->r));
      fire_index.push_back(i);
    } else {
      deliveries->emplace_back(i, std::move(*d));
    }
  }
  auto firing = fire_many(m, std::move(to_fire));
  bool fired = co_await std::move(firing);
  for (auto i : fire_index) {
    (*ok)[i] = fired;
  }
  // A retry is not tried before its backoff is over, though handed over early.
  auto latest = time::ms{};
  for (const auto& [i, d] : *deliveries) {
    latest = std::max(latest, jobs[i].due);
  }
  co_await pause(latest - time::now());
  std::function<asio::awaitable<void>(std::size_t)> one = [m, ok, deliveries](std::size_t k) -> asio::awaitable<void> {
    auto& [i, d] = (*deliveries)[k];
    auto call = deliver(m, d);
    (*ok)[i] = co_await std::move(call);
  };
  co_await for_each_parallel(deliveries->size(), 32, std::move(one));
  co_return *ok;
}

// Whatever the scheduler did or dropped: reminders past due and not fired
// fire now; deliveries nobody settled are tried again; rows the scheduler
// has not acknowledged are sent again.
asio::awaitable<void> reconcile(module_ptr m) {
  co_await sync_jobs(m);
  db::query q{&overdue_stmt, {"2 seconds"}};
  auto overdue = co_await m->db->execute_one(std::move(q));
  if (overdue && overdue->size() > 0) {
    std::vector<reminder_ref> rs;
    for (int i = 0; i < overdue->size(); ++i) {
      rs.push_back({std::string(overdue->text(i, 0)), std::string(overdue->text(i, 1)),
                    std::string(overdue->text(i, 2)), time::from_unix_ms(overdue->integer(i, 3)), {}});
    }
    log::info("reminders", "firing overdue reminders", {{"count", overdue->size()}});
    auto f = fire_many(m, std::move(rs));
    co_await std::move(f);
  }
  // Retries are scheduled jobs; a delivery left open for longer than the
  // longest backoff lost its job (a crash before it was scheduled, or a
  // sidecar that dropped it) and is tried again.
  db::query o{&open_stmt, {"65 minutes"}};
  auto open = co_await m->db->execute_one(std::move(o));
  if (open) {
    for (int i = 0; i < open->size(); ++i) {
      reminder_ref r{std::string(open->text(i, 0)), std::string(open->text(i, 1)), std::string(open->text(i, 2)),
                     time::from_unix_ms(open->integer(i, 3)), {}};
      job_data d{"deliver", r, std::string(open->text(i, 4)), 1};
      auto call = deliver(m, std::move(d));
      co_await std::move(call);
    }
  }
}

asio::awaitable<void> reconcile_loop(module_ptr m) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    try {
      co_await reconcile(m);
    } catch (const std::exception& e) {
      log::error("reminders", "reconciliation failed", {{"error", std::string_view(e.what())}});
    }
    timer.expires_after(m->dapr.reconcile_interval);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

// POST /job/{name}: the sidecar's trigger. 2xx: done; 500: the sidecar
// tries again by its failure policy.
asio::awaitable<http::response> job_route(module_ptr m, request_context ctx) {
  if (!m->dapr.app_api_token.empty()) {
    auto token = ctx.req.header_value("dapr-api-token");
    if (!token || !crypto::equal(*token, m->dapr.app_api_token)) {
      co_return problem(errc::unauthorized, "Send the app API token in dapr-api-token");
    }
  }
  std::string name(ctx.param("name"));
  auto body = std::move(ctx.req.body);
  auto call = m->jobs->deliver(name, std::move(body));
  bool ok = co_await std::move(call);
  if (!ok) {
    co_return problem(errc::unavailable, "The job could not run now; try again");
  }
  co_return http::no_content(200);
}

}  // namespace

void install(todo::app& a) {
  std::shared_ptr<scheduler> jobs;
  std::shared_ptr<state_store> store;
  if (a.cfg.dapr.enabled()) {
    auto client = std::make_shared<dapr::client>(
        a.io, dapr::client_options{.port = a.cfg.dapr.http_port, .api_token = a.cfg.dapr.api_token}, a.metrics);
    jobs = make_dapr_scheduler(a.io, client, a.metrics);
    store = make_dapr_state_store(client, a.cfg.dapr.state_store);
  } else {
    jobs = make_embedded_scheduler(a.io, a.db, a.metrics);
    store = make_postgres_state_store(a.db);
  }
  auto outcomes = [&a](std::string_view outcome) -> metrics::counter& {
    return a.metrics.get_counter("todo_reminder_deliveries_total", "Reminder channel deliveries settled",
                                 metrics::label("outcome", outcome));
  };
  auto m = std::make_shared<module>(module{
      .io = a.io,
      .db = a.db,
      .bus = a.bus,
      .jobs = jobs,
      .store = store,
      .sender = std::make_shared<outbound::sender>(),
      .notify = a.cfg.notify,
      .dapr = a.cfg.dapr,
      .fired = a.metrics.get_counter("todo_reminders_fired_total", "Reminders fired"),
      .sent = outcomes("sent"),
      .failed = outcomes("failed"),
      .retried = outcomes("retried"),
  });

  event_bus::checkpoint_store where{
      .load = [store](std::string name) -> asio::awaitable<result<std::int64_t>> {
        auto key = "checkpoint-" + name;
        auto got = co_await store->get(std::move(key));
        if (!got) {
          co_return got.error();
        }
        std::int64_t pos = 0;
        if (*got) {
          simdjson::dom::parser p;
          simdjson::dom::element root;
          if (p.parse((*got)->value).get(root) == simdjson::SUCCESS) {
            std::int64_t v = 0;
            double d = 0;
            if (root["pos"].get(v) == simdjson::SUCCESS) {
              pos = v;
            } else if (root["pos"].get(d) == simdjson::SUCCESS) {
              pos = static_cast<std::int64_t>(d);
            }
          }
        }
        co_return pos;
      },
      .save = [store](std::string name, std::int64_t pos) -> asio::awaitable<result<void>> {
        auto value = "{\"pos\":" + std::to_string(pos) + "}";
        auto key = "checkpoint-" + name;
        auto call = store->save(std::move(key), std::move(value), std::string{});
        co_return co_await std::move(call);
      },
  };
  event_bus::handler h = [m](std::vector<event> batch) { return follow(m, std::move(batch)); };
  a.bus.subscribe("reminders", std::move(h), std::move(where));

  // Starts with the schema: the bus starts after migrations, and so do these.
  a.on_schema_ready.push_back([m] {
    fire_fn f = [m](std::vector<due_job> jobs) { return run_jobs(m, std::move(jobs)); };
    m->jobs->start(std::move(f));
    asio::co_spawn(asio::make_strand(m->io), reconcile_loop(m), asio::detached);
  });

  // Transfers under way post their results to the io_context: they end
  // before it does.
  a.on_stopped.push_back([m] {
    m->sender->shutdown();
    m->jobs->stop();
  });
  a.routes.add(
      http::method::post, "/job/{name}", [m](request_context c) { return job_route(m, std::move(c)); },
      access::sidecar);
  a.ready_checks.push_back([m](json::writer& w) {
    bool ok = m->jobs->ready();
    w.key("scheduler").value(ok ? "ok" : "down");
    return ok;
  });
}

}  // namespace todo::reminders
