// The tasks module's route table.
#include "tasks/tasks.hpp"

#include "handlers.hpp"
#include "idempotency.hpp"

#include "todo/app.hpp"
#include "todo/router.hpp"

namespace todo::tasks {

void install(todo::app& a) {
  auto st = std::make_shared<const module_state>(module_state{a.db, &a.bus});
  auto bind = [st](auto fn) { return [st, fn](request_context c) { return fn(st, std::move(c)); }; };
  using http::method;
  a.routes.add(method::post, "/api/v1/tasks", bind(create_task));
  a.routes.add(method::get, "/api/v1/tasks", bind(list_tasks));
  a.routes.add(method::get, "/api/v1/tasks/{id}", bind(get_task));
  a.routes.add(method::patch, "/api/v1/tasks/{id}", bind(update_task));
  a.routes.add(method::delete_, "/api/v1/tasks/{id}", bind(delete_task));
  a.routes.add(method::post, "/api/v1/tasks/{id}/complete", bind(complete_task));
  a.routes.add(method::post, "/api/v1/tasks/{id}/reopen", bind(reopen_task));
  start_maintenance(a.io, a.db);
}

}  // namespace todo::tasks
