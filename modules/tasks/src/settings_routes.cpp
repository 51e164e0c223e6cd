// GET and PATCH /api/v1/settings
#include "handlers.hpp"
#include "settings_store.hpp"

#include "todo/problem.hpp"
#include "todo/webhook_check.hpp"

namespace todo::tasks {
namespace {

constexpr std::chrono::milliseconds lookup_timeout{3000};

http::response answer(const settings& s) { return http::json(200, to_json(s)); }

}  // namespace

asio::awaitable<http::response> get_settings(state_ptr st, request_context ctx) {
  auto s = co_await settings_store::load(*st->db, ctx.user);
  if (!s) {
    co_return problem_from(s.error());
  }
  co_return answer(*s);
}

asio::awaitable<http::response> update_settings(state_ptr st, request_context ctx) {
  if (auto refused = require_json(ctx.req, true)) {
    co_return std::move(*refused);
  }
  auto body = parse_settings_body(ctx.req.body, st->webhook_allow_insecure);
  if (!body.bad_request.empty()) {
    co_return problem(errc::bad_request, body.bad_request);
  }
  if (!body.errors.empty()) {
    co_return validation_problem(body.errors);
  }
  if (body.patch.webhook_target && !st->webhook_allow_insecure) {
    auto target = std::move(*body.patch.webhook_target);
    auto why = co_await webhook::check_target(std::move(target), lookup_timeout);
    if (why) {
      field_errors errs{{"webhook_url", "must reach a public address: the host " + *why}};
      co_return validation_problem(errs);
    }
  }
  auto s = co_await settings_store::apply(*st->db, ctx.user, std::move(body.patch));
  if (!s) {
    co_return problem_from(s.error());
  }
  co_return answer(*s);
}

}  // namespace todo::tasks
