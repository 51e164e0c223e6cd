#pragma once
// The SQL of the user's settings (table user_settings; no row = defaults).
#include "settings.hpp"
#include "todo/db.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

namespace todo::tasks::settings_store {

namespace asio = boost::asio;

asio::awaitable<boost::system::result<settings>> load(db::pool& db, std::string user);
// Applies the patch in one statement (insert or update) and returns the result.
asio::awaitable<boost::system::result<settings>> apply(db::pool& db, std::string user, settings_patch p);

}  // namespace todo::tasks::settings_store
