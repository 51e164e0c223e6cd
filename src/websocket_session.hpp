#pragma once
// The WebSocket side of an HTTP session, over Beast. Only http_server.cpp
// and websocket_session.cpp include this.
#include "todo/websocket.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <functional>
#include <memory>

namespace todo::metrics {
class registry;
}

namespace todo::ws {

// Accepts the upgrade and runs the connection until it closes. `on_open`
// receives the peer (for the server's drain: close with 1001).
boost::asio::awaitable<void> run_websocket(boost::beast::tcp_stream stream,
                                           boost::beast::http::request<boost::beast::http::string_body> req,
                                           handler& h, admission a, limits l, metrics::registry& m,
                                           std::function<void(std::weak_ptr<peer>)> on_open);

}  // namespace todo::ws
