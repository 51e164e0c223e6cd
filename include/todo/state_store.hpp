#pragma once
// A key-value store with ETags: the Dapr state API (state.postgresql v2)
// through the sidecar, or the same table written directly when there is no
// sidecar. Values are JSON text.
#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <memory>
#include <optional>
#include <string>

namespace todo {

namespace db {
class pool;
}
namespace dapr {
class client;
}

struct state_item {
  std::string value;  // JSON text
  std::string etag;
};

// Errors: dapr::errc::conflict when an ETag does not match (or the key is
// absent while one was given); dapr::errc::unavailable / db errors when the
// store cannot be reached.
class state_store {
 public:
  virtual ~state_store() = default;
  virtual boost::asio::awaitable<boost::system::result<std::optional<state_item>>> get(std::string key) = 0;
  // Empty etag: last-write upsert. Else only the row with that ETag is updated.
  virtual boost::asio::awaitable<boost::system::result<void>> save(std::string key, std::string value,
                                                                   std::string etag) = 0;
  // Empty etag: deletes if present. Else only the row with that ETag.
  virtual boost::asio::awaitable<boost::system::result<void>> remove(std::string key, std::string etag) = 0;
  virtual const char* kind() const = 0;  // "postgres" or "dapr"
};

// The state.postgresql v2 table (`state`), keys prefixed `todo-server||`.
std::shared_ptr<state_store> make_postgres_state_store(std::shared_ptr<db::pool> db);
// POST/GET/DELETE /v1.0/state/{store} on the sidecar.
std::shared_ptr<state_store> make_dapr_state_store(std::shared_ptr<dapr::client> c, std::string store);

}  // namespace todo
