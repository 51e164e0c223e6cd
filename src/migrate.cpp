#include "todo/migrations.hpp"

#include "todo/db.hpp"
#include "todo/log.hpp"

#include <set>

namespace todo {
namespace {
// An arbitrary constant shared by every replica: "todo" in ASCII.
constexpr std::string_view lock_sql = "SET statement_timeout = 0; SET lock_timeout = 0; SELECT pg_advisory_lock(1953457263)";
const db::statement applied_stmt{"migrations_applied", "SELECT version FROM schema_migrations"};
}  // namespace

boost::asio::awaitable<boost::system::result<void>> migrate(db::pool& p) {
  auto l = co_await p.acquire();
  if (!l) {
    co_return l.error();
  }
  auto locked = co_await l->run_script(std::string(lock_sql));
  if (!locked) {
    co_return locked.error();
  }
  auto r = co_await l->run_script(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
      "applied_at timestamptz NOT NULL DEFAULT now())");
  if (!r) {
    co_return r.error();
  }
  std::vector<db::query> read_applied;
  read_applied.push_back({&applied_stmt, {}});
  auto done = co_await l->execute(std::move(read_applied));
  if (!done) {
    co_return done.error();
  }
  std::set<std::int64_t> applied;
  for (int i = 0; i < done->front().size(); ++i) {
    applied.insert(done->front().integer(i, 0));
  }
  for (const auto& m : migrations()) {
    if (applied.contains(m.version)) {
      continue;
    }
    std::string script = "BEGIN;\n";
    script += m.sql;
    script += "\n;INSERT INTO schema_migrations (version, name) VALUES (" + std::to_string(m.version) + ", '" +
              std::string(m.name) + "');\nCOMMIT;";
    auto applied_now = co_await l->run_script(std::move(script));
    if (!applied_now) {
      log::error("migrate", "migration failed", {{"version", m.version}, {"name", m.name}});
      co_await l->run_script("ROLLBACK");
      co_return applied_now.error();
    }
    log::info("migrate", "migration applied", {{"version", m.version}, {"name", m.name}});
  }
  // RESET ALL returns to the values the connection was opened with.
  co_return co_await l->run_script("SELECT pg_advisory_unlock(1953457263); RESET ALL");
}

}  // namespace todo
