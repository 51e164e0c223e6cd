#pragma once
// The address guard applied to a webhook target, resolving its host name
// (webhook_target.hpp has the pure parts).
#include "todo/webhook_target.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <optional>
#include <string>

namespace todo::webhook {

// Why no webhook may go to `t` (client text: "resolves to a private address
// (10.0.0.5)", "does not resolve"), or nullopt. A literal address is judged
// as it is; a name through the system resolver, waiting at most `timeout`,
// and every address it resolves to must be public.
boost::asio::awaitable<std::optional<std::string>> check_target(target t, std::chrono::milliseconds timeout);

}  // namespace todo::webhook
