#pragma once
// The SQL of the tasks module. Every statement is scoped by user_id.
#include "task.hpp"
#include "todo/db.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <optional>

namespace todo::tasks::store {

namespace asio = boost::asio;
template <class T>
using result = boost::system::result<T>;

asio::awaitable<result<std::optional<task>>> find(db::pool& db, std::string user, std::string id);

struct page_query {
  std::string user;
  std::string status;  // open, completed, all
  std::optional<std::string> after_id;
  int limit = 50;
};
// Up to limit + 1 rows, so the caller knows whether another page exists.
asio::awaitable<result<std::vector<task>>> list(db::pool& db, page_query q);

// Query builders, so a write and its idempotency record share a
// transaction. Each appends the change's event in the same statement and
// returns one row when the change applied, none when it did not.
db::query insert(const task& t);
// Writes `after` if the stored version is still before.version. `kind` names
// the event: "updated", "completed", "reopened".
db::query replace(const task& before, const task& after, std::string_view kind);
// Deletes the task if its stored version is still t.version.
db::query remove(const task& t);

}  // namespace todo::tasks::store
