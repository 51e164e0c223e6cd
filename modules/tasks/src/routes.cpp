// The tasks module's route table.
#include "tasks/tasks.hpp"

#include "handlers.hpp"
#include "idempotency.hpp"

#include "todo/app.hpp"
#include "todo/config.hpp"
#include "todo/crypto.hpp"
#include "todo/event_log.hpp"
#include "todo/router.hpp"

namespace todo::tasks {

void install(todo::app& a) {
  // Cursors stay valid across restarts and replicas that share the secret.
  const auto& auth = a.cfg.auth;
  auto key = crypto::sha256("todo-server listing cursor\n" +
                            (auth.cursor_secret.empty() ? auth.jwt_secret : auth.cursor_secret));
  auto st = std::make_shared<const module_state>(module_state{
      .db = a.db,
      .bus = &a.bus,
      .cursor_key = std::string(crypto::as_chars(key)),
      .webhook_allow_insecure = a.cfg.notify.webhook_allow_insecure,
      .rules = a.recurrence,
  });
  auto bind = [st](auto fn) { return [st, fn](request_context c) { return fn(st, std::move(c)); }; };
  using http::method;
  a.routes.add(method::post, "/api/v1/tasks", bind(create_task));
  a.routes.add(method::get, "/api/v1/tasks", bind(list_tasks));
  a.routes.add(method::get, "/api/v1/tasks/{id}", bind(get_task));
  a.routes.add(method::patch, "/api/v1/tasks/{id}", bind(update_task));
  a.routes.add(method::delete_, "/api/v1/tasks/{id}", bind(delete_task));
  a.routes.add(method::post, "/api/v1/tasks/{id}/complete", bind(complete_task));
  a.routes.add(method::post, "/api/v1/tasks/{id}/reopen", bind(reopen_task));
  a.routes.add(method::get, "/api/v1/tags", bind(list_tags));
  a.routes.add(method::get, "/api/v1/settings", bind(get_settings));
  a.routes.add(method::patch, "/api/v1/settings", bind(update_settings));
  start_maintenance(a.io, a.db);
  follow_reminder_states(a.bus, a.db);
}

}  // namespace todo::tasks
