#include "todo/webhook_check.hpp"

#include "todo/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace todo::webhook {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// Shared by the lookup and its waiter; both run on one strand.
struct lookup {
  explicit lookup(const asio::any_io_executor& strand) : done(strand) {}
  asio::steady_timer done;
  bool finished = false;
  std::vector<address> found;
};

address from_asio(const asio::ip::address& a) {
  address out;
  if (a.is_v4()) {
    auto b = a.to_v4().to_bytes();
    std::copy(b.begin(), b.end(), out.bytes.begin());
  } else {
    auto b = a.to_v6().to_bytes();
    std::copy(b.begin(), b.end(), out.bytes.begin());
    out.v6 = true;
  }
  return out;
}

std::string text_of(const address& a) {
  if (!a.v6) {
    asio::ip::address_v4::bytes_type b;
    std::copy_n(a.bytes.begin(), 4, b.begin());
    return asio::ip::address_v4(b).to_string();
  }
  asio::ip::address_v6::bytes_type b;
  std::copy(a.bytes.begin(), a.bytes.end(), b.begin());
  return asio::ip::address_v6(b).to_string();
}

asio::awaitable<void> resolve_into(std::shared_ptr<lookup> l, std::string host) {
  tcp::resolver r(co_await asio::this_coro::executor);
  auto [ec, results] = co_await r.async_resolve(host, "", use_tuple);
  if (!ec) {
    for (const auto& e : results) {
      l->found.push_back(from_asio(e.endpoint().address()));
    }
  }
  l->finished = true;
  l->done.cancel();
}

// Runs on a strand of its own, shared with the lookup, so the lookup's
// completion and the deadline never race; the system resolver may outlive
// the deadline, and then finishes into a lookup nobody reads.
asio::awaitable<std::optional<std::string>> resolve_and_judge(std::string host, std::chrono::milliseconds timeout) {
  auto strand = co_await asio::this_coro::executor;
  auto l = std::make_shared<lookup>(strand);
  l->done.expires_after(timeout);
  asio::co_spawn(strand, resolve_into(l, host), [](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        log::error("webhook", "host lookup failed", {{"error", x.what()}});
      }
    }
  });
  co_await l->done.async_wait(use_tuple);
  if (!l->finished) {
    co_return "could not be resolved in time";
  }
  if (l->found.empty()) {
    co_return "does not resolve to an address";
  }
  for (const auto& a : l->found) {
    if (auto why = refusal(a)) {
      co_return "resolves to " + std::string(*why) + " (" + text_of(a) + ")";
    }
  }
  co_return std::nullopt;
}

}  // namespace

asio::awaitable<std::optional<std::string>> check_target(target t, std::chrono::milliseconds timeout) {
  if (auto literal = parse_address(t.host)) {
    auto why = refusal(*literal);
    co_return why ? std::optional<std::string>("is " + std::string(*why)) : std::nullopt;
  }
  auto ex = co_await asio::this_coro::executor;
  auto strand = asio::make_strand(ex);
  auto op = asio::co_spawn(strand, resolve_and_judge(std::move(t.host), timeout), asio::use_awaitable);
  co_return co_await std::move(op);
}

}  // namespace todo::webhook
