#include "settings_store.hpp"

namespace todo::tasks::settings_store {
namespace {

#define SETTINGS_COLUMNS "timezone, email, webhook_url, webhook_secret IS NOT NULL"

const db::statement select_stmt{"settings_find", "SELECT " SETTINGS_COLUMNS " FROM user_settings WHERE user_id = $1"};

// Each field is a flag (was it in the patch) and its value; an absent
// field keeps the stored one. One statement, so concurrent patches of
// different fields both apply.
const db::statement upsert_stmt{
    "settings_upsert",
    "INSERT INTO user_settings AS s (user_id, timezone, email, webhook_url, webhook_secret)"
    " VALUES ($1, coalesce($3, 'UTC'), $5, $7, $9)"
    " ON CONFLICT (user_id) DO UPDATE SET"
    " timezone = CASE WHEN $2::bool THEN $3 ELSE s.timezone END,"
    " email = CASE WHEN $4::bool THEN $5 ELSE s.email END,"
    " webhook_url = CASE WHEN $6::bool THEN $7 ELSE s.webhook_url END,"
    " webhook_secret = CASE WHEN $8::bool THEN $9 ELSE s.webhook_secret END,"
    " version = s.version + 1, updated_at = now()"
    " RETURNING " SETTINGS_COLUMNS};

settings read(const db::rows& r) {
  settings s;
  if (r.size() == 0) {
    return s;
  }
  s.timezone = std::string(r.text(0, 0));
  if (!r.is_null(0, 1)) {
    s.email = std::string(r.text(0, 1));
  }
  if (!r.is_null(0, 2)) {
    s.webhook_url = std::string(r.text(0, 2));
  }
  s.webhook_secret_set = r.boolean(0, 3);
  return s;
}

template <class T>
void add(std::vector<db::param>& params, std::optional<T> field) {
  params.emplace_back(field ? "t" : "f");
  if constexpr (std::is_same_v<T, std::string>) {
    params.push_back(std::move(field));
  } else {
    params.push_back(field ? std::move(*field) : std::nullopt);
  }
}

}  // namespace

asio::awaitable<boost::system::result<settings>> load(db::pool& db, std::string user) {
  db::query q{&select_stmt, {std::move(user)}};
  auto r = co_await db.execute_one(std::move(q));
  if (!r) {
    co_return r.error();
  }
  co_return read(*r);
}

asio::awaitable<boost::system::result<settings>> apply(db::pool& db, std::string user, settings_patch p) {
  std::vector<db::param> params{std::move(user)};
  add(params, std::move(p.timezone));
  add(params, std::move(p.email));
  add(params, std::move(p.webhook_url));
  add(params, std::move(p.webhook_secret));
  db::query q{&upsert_stmt, std::move(params)};
  auto r = co_await db.execute_one(std::move(q));
  if (!r) {
    co_return r.error();
  }
  co_return read(*r);
}

}  // namespace todo::tasks::settings_store
