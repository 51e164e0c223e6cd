// The WebSocket writer's fast path over a real loopback TCP connection with
// small socket buffers, read by a plain socket and parsed by hand: a frame
// the socket takes only in part is finished before anything Beast writes.
#include "frame_socket.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace asio = boost::asio;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;
using todo::ws::frame_socket;

namespace {

struct frame {
  int opcode;
  bool fin;
  std::string payload;
};

// Reads one server frame (never masked) from a blocking socket.
frame read_frame(tcp::socket& s) {
  unsigned char h[2];
  asio::read(s, asio::buffer(h));
  std::uint64_t len = h[1] & 0x7f;
  if (len >= 126) {
    std::vector<unsigned char> ext(len == 126 ? 2 : 8);
    asio::read(s, asio::buffer(ext));
    len = 0;
    for (auto b : ext) {
      len = (len << 8) | b;
    }
  }
  std::string payload(len, '\0');
  asio::read(s, asio::buffer(payload));
  return {h[0] & 0x0f, (h[0] & 0x80) != 0, std::move(payload)};
}

}  // namespace

TEST_CASE("a pong owed while a frame is half written follows the whole frame") {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket client(io);
  client.open(tcp::v4());
  client.set_option(asio::socket_base::receive_buffer_size(4096));
  client.connect(acceptor.local_endpoint());
  frame_socket::socket_type accepted(asio::make_strand(io));
  acceptor.accept(accepted);
  accepted.set_option(asio::socket_base::send_buffer_size(4096));
  accepted.non_blocking(true);
  websocket::stream<frame_socket> ws(frame_socket(std::move(accepted)));

  // The handshake, the client's side by hand.
  std::string upgrade =
      "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  asio::write(client, asio::buffer(upgrade));
  bool accepted_ok = false;
  ws.async_accept([&](boost::system::error_code ec) { accepted_ok = !ec; });
  io.run();
  io.restart();
  REQUIRE(accepted_ok);
  std::string head;
  asio::read_until(client, asio::dynamic_buffer(head), "\r\n\r\n");
  REQUIRE(head.rfind("HTTP/1.1 101", 0) == 0);

  // Far more than both buffers hold: the socket takes only a part.
  auto big = std::make_shared<const std::string>(std::string(400000, 'a') + "z");
  std::atomic<bool> rest_done{false};
  bool whole = ws.next_layer().write_text(big, [&](boost::system::error_code ec) { rest_done = !ec; });
  REQUIRE_FALSE(whole);
  REQUIRE_FALSE(ws.next_layer().idle());

  // A masked ping (zero mask); Beast's read answers it with a pong.
  const unsigned char ping[] = {0x89, 0x82, 0, 0, 0, 0, 'h', 'i'};
  asio::write(client, asio::buffer(ping));
  boost::beast::flat_buffer buffer;
  ws.async_read(buffer, [](boost::system::error_code, std::size_t) {});
  std::thread server([&] { io.run(); });

  auto first = read_frame(client);
  auto second = read_frame(client);
  client.close();
  server.join();

  CHECK(first.opcode == 1);
  CHECK(first.fin);
  CHECK(first.payload == *big);
  CHECK(second.opcode == 0xa);
  CHECK(second.payload == "hi");
  CHECK(rest_done);
}

TEST_CASE("a frame the socket takes whole is written at once") {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket client(io);
  client.connect(acceptor.local_endpoint());
  frame_socket::socket_type accepted(asio::make_strand(io));
  acceptor.accept(accepted);
  accepted.non_blocking(true);
  frame_socket fs(std::move(accepted));
  for (std::size_t size : {0, 125, 126, 65535, 65536}) {
    auto text = std::make_shared<const std::string>(std::string(size, 'x'));
    REQUIRE(fs.write_text(text, [](boost::system::error_code) {}));
    auto f = read_frame(client);
    CHECK(f.opcode == 1);
    CHECK(f.fin);
    CHECK(f.payload.size() == size);
  }
  CHECK(fs.idle());
}
