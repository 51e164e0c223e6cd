#pragma once
// The handlers of the tasks routes, one file each, and what they share.
#include "task.hpp"
#include "todo/db.hpp"
#include "todo/errors.hpp"
#include "todo/http.hpp"
#include "todo/recurrence_rules.hpp"
#include "todo/router.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <variant>

namespace boost::asio {
class io_context;
}

namespace todo {
class event_bus;
}

namespace todo::tasks {

namespace asio = boost::asio;

struct module_state {
  std::shared_ptr<db::pool> db;
  event_bus* bus;  // woken after each commit
  std::string cursor_key;  // signs listing cursors
  bool webhook_allow_insecure = false;  // WEBHOOK_ALLOW_INSECURE
  std::shared_ptr<const recurrence_rules> rules;  // from the recurrence module; null: none accepted
};
using state_ptr = std::shared_ptr<const module_state>;

// Keeps each reminder's `state` in step with the reminders module's events.
void follow_reminder_states(event_bus& bus, std::shared_ptr<db::pool> db);

// Hourly deletion of expired idempotency keys.
void start_maintenance(asio::io_context& io, std::shared_ptr<db::pool> db);

asio::awaitable<http::response> create_task(state_ptr st, request_context ctx);
asio::awaitable<http::response> get_task(state_ptr st, request_context ctx);
asio::awaitable<http::response> list_tasks(state_ptr st, request_context ctx);
asio::awaitable<http::response> update_task(state_ptr st, request_context ctx);
asio::awaitable<http::response> delete_task(state_ptr st, request_context ctx);
asio::awaitable<http::response> complete_task(state_ptr st, request_context ctx);
asio::awaitable<http::response> reopen_task(state_ptr st, request_context ctx);
asio::awaitable<http::response> list_tags(state_ptr st, request_context ctx);
asio::awaitable<http::response> get_settings(state_ptr st, request_context ctx);
asio::awaitable<http::response> update_settings(state_ptr st, request_context ctx);

// --- shared by the handlers ---

// 415 unless the body is declared JSON (merge-patch JSON too when allowed).
std::optional<http::response> require_json(const http::request& req, bool merge_patch);
// The {id} path parameter, normalized; nullopt answers 404 like any unknown id.
std::optional<std::string> task_id(const request_context& ctx);
http::response not_found();

// If-Match: absent, or the versions it names (or `*`).
struct precondition {
  bool any = false;
  std::vector<std::int64_t> versions;
  bool matches(std::int64_t v) const;
};
std::variant<std::monostate, precondition, http::response> read_if_match(const http::request& req);

http::response task_answer(unsigned status, const task& t);

// Applies `change` and, if it affected a row, the idempotency record of
// `answer`, in one transaction. Returns whether the change applied.
asio::awaitable<boost::system::result<bool>> commit(db::pool& db, db::query change,
                                                    std::vector<db::query> record);

}  // namespace todo::tasks

namespace todo::tasks {

struct idempotency_key;

// How a request moves a task from its current state to the next.
struct transition {
  std::string kind;  // the event: "updated", "completed", "reopened", "deleted"
  // The new state, or nullopt when the request changes nothing. For
  // "deleted", any value: the task as it is goes.
  std::function<std::optional<task>(const task&)> next;
  // The answer for the resulting (or unchanged) task.
  std::function<http::response(const task&)> answer;
  // Optional: what the resulting task must satisfy as a whole (422).
  std::function<field_errors(const task& before, const task& after)> check;
  // Optional, for completions: the next occurrence of a recurring task,
  // created in the same transaction unless one was recorded before, and the
  // answer that shows it (the new or recorded one, or none).
  std::function<std::optional<task>(const task& completed)> follow;
  std::function<http::response(const task&, const std::optional<task>& next)> answer_with_next;
};

// Optimistic concurrency: read, compute, write if the version is unchanged,
// retry when another writer got there first. If-Match failures are 412.
asio::awaitable<boost::system::result<http::response>> write_task(state_ptr st, std::string user, std::string id,
                                                                  std::optional<precondition> pre,
                                                                  std::optional<idempotency_key> key, transition tr);

// The whole of a request on /api/v1/tasks/{id} that moves the task: the id,
// If-Match, the Idempotency-Key, then write_task.
asio::awaitable<http::response> run_transition(state_ptr st, request_context ctx, transition tr);

}  // namespace todo::tasks
