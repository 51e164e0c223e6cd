#pragma once
#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <string_view>
#include <vector>

namespace todo {

namespace db {
class pool;
}

struct migration {
  int version;
  std::string_view name;
  std::string_view sql;
};

// The files of migrations/, in order, embedded at build time.
const std::vector<migration>& migrations();

// Applies every migration not yet applied, each in its own transaction, under
// an advisory lock so that replicas starting together apply each exactly once.
boost::asio::awaitable<boost::system::result<void>> migrate(db::pool& p);

}  // namespace todo
