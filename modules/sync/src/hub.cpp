#include "hub.hpp"

#include "admission.hpp"
#include "client_frame.hpp"

#include "todo/db.hpp"
#include "todo/event_log.hpp"
#include "todo/json.hpp"
#include "todo/jwt.hpp"
#include "todo/log.hpp"
#include "todo/metrics.hpp"
#include "todo/problem.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/strand.hpp>

#include <algorithm>

namespace todo::sync {
namespace asio = boost::asio;

namespace {
constexpr int page = 500;
constexpr std::size_t error_flood = 20;  // malformed frames within ten seconds, then 1008

std::string reset_frame(std::int64_t last_seq) {
  json::writer w;
  w.begin_object().key("type").value("reset").key("last_seq").value(last_seq).end_object();
  return w.take();
}
}  // namespace

hub::hub(asio::io_context& io, std::shared_ptr<db::pool> db, const jwt::verifier& v, websocket_config cfg,
         metrics::registry& m)
    : io_(io),
      db_(std::move(db)),
      verifier_(v),
      cfg_(cfg),
      malformed_(m.get_counter("todo_ws_malformed_frames_total", "Client frames that were not a valid command")),
      refused_total_(metrics::rejections(m, "ws_connections")),
      refused_per_user_(metrics::rejections(m, "ws_per_user")),
      delivery_(m.get_histogram("todo_ws_delivery_seconds", "From commit to the frame queued for a socket")) {}

std::size_t hub::connections() const {
  std::lock_guard lock(mu_);
  return conns_.size();
}

std::variant<ws::admission, http::response> hub::admit(const http::request& req) {
  auto token = find_token(req);
  if (!token) {
    return problem(errc::unauthorized,
                   "Send Authorization: Bearer <token>, ?access_token=<token> or the subprotocol bearer.<token>");
  }
  auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
  auto claims = verifier_.verify(token->token, now.count());
  if (!claims) {
    return token_refused(claims.error());
  }
  if (!following_.load()) {
    return problem(errc::unavailable, "The server is starting; try again shortly");
  }
  std::lock_guard lock(mu_);
  if (conns_.size() + reserved_total_ >= cfg_.max_connections) {
    refused_total_.inc();
    auto r = problem(errc::rate_limited, "The server holds as many WebSocket connections as it may");
    r.set("retry-after", "5");
    return r;
  }
  std::size_t held = 0;
  if (auto it = reserved_.find(claims->sub); it != reserved_.end()) {
    held += it->second;
  }
  if (auto it = by_user_.find(claims->sub); it != by_user_.end()) {
    held += it->second.size();
  }
  if (held >= cfg_.max_per_user) {
    refused_per_user_.inc();
    auto r = problem(errc::rate_limited, "This user holds as many WebSocket connections as it may");
    r.set("retry-after", "5");
    return r;
  }
  // Reserved until opened() or abandoned(), so concurrent upgrades cannot
  // pass the limits between admission and the end of the handshake.
  ++reserved_[claims->sub];
  ++reserved_total_;
  return ws::admission{claims->sub, claims->exp, token->subprotocol};
}

boost::asio::awaitable<void> hub::prepare(ws::admission& a) {
  // The stream starts after the user's newest event as of now, before the
  // handshake is answered: anything committed after the client sees the 101
  // is delivered. If the log cannot be read, opened() finds the start later.
  auto bounds = co_await user_bounds(*db_, a.user);
  if (bounds) {
    a.cursor = bounds->last_seq;
  }
}

void hub::release_reservation(const std::string& user) {
  auto it = reserved_.find(user);
  if (it == reserved_.end()) {
    return;
  }
  if (it->second > 0) {
    --it->second;
    --reserved_total_;
  }
  if (it->second == 0) {
    reserved_.erase(it);
  }
}

void hub::abandoned(const ws::admission& a) {
  std::lock_guard lock(mu_);
  release_reservation(a.user);
}

void hub::opened(const std::shared_ptr<ws::peer>& p, const ws::admission& a) {
  std::lock_guard lock(mu_);
  release_reservation(a.user);
  auto id = p->id();
  connection c{p, a.user};
  c.last = a.cursor;  // -1: not known yet, found by the catch-up
  conns_[id] = std::move(c);
  by_user_[a.user].push_back(id);
  // The stream starts after the user's newest event as of admission; a
  // resume moves it.
  start_catch_up(id);
}

void hub::closed(const std::shared_ptr<ws::peer>& p) {
  std::lock_guard lock(mu_);
  auto it = conns_.find(p->id());
  if (it == conns_.end()) {
    return;
  }
  auto& ids = by_user_[it->second.user];
  std::erase(ids, p->id());
  if (ids.empty()) {
    by_user_.erase(it->second.user);
  }
  conns_.erase(it);
}

void hub::send_error(connection& c, std::string_view message) {
  malformed_.inc();
  auto now = std::chrono::steady_clock::now();
  std::erase_if(c.errors, [&](auto t) { return now - t > std::chrono::seconds(10); });
  c.errors.push_back(now);
  if (c.errors.size() > error_flood) {
    c.peer->close(ws::policy_violation, "too many malformed frames");
    return;
  }
  json::writer w;
  w.begin_object().key("type").value("error").key("message").value(message).end_object();
  c.peer->send(w.take());
}

void hub::received(const std::shared_ptr<ws::peer>& p, std::string_view text) {
  // Parse before taking the lock.
  auto frame = parse_client_frame(text);
  std::lock_guard lock(mu_);
  auto it = conns_.find(p->id());
  if (it == conns_.end()) {
    return;
  }
  auto& c = it->second;
  if (auto* error = std::get_if<std::string>(&frame)) {
    send_error(c, *error);
  } else {
    c.resume = std::get<resume_command>(frame).after;
    start_catch_up(p->id());
  }
}

void hub::start_catch_up(std::uint64_t id) {
  auto& c = conns_.at(id);
  if (c.catching_up) {
    c.missed = true;
    return;
  }
  c.catching_up = true;
  // Posted, never dispatched: co_spawn may start the coroutine inline on this
  // thread, and it takes mu_, which the caller holds.
  asio::post(io_, [self = shared_from_this(), id] {
    asio::co_spawn(asio::make_strand(self->io_), catch_up(self, id), [](std::exception_ptr e) {
      if (e) {
        log::error("sync", "catch-up failed", {});
      }
    });
  });
}

// The catch-up loop's state changes happen in these plain functions: GCC 12
// does not reliably run the destructor of a lock held in a coroutine frame.
std::optional<hub::step> hub::next_step(std::uint64_t id) {
  std::lock_guard lock(mu_);
  auto it = conns_.find(id);
  if (it == conns_.end()) {
    return std::nullopt;
  }
  auto& c = it->second;
  c.missed = false;
  auto kind = c.resume ? start::resume : (c.last < 0 ? start::fresh : start::none);
  return step{c.user, c.last, kind};
}

void hub::stop_catch_up(connection& c) {
  c.peer->close(1011, "the event log is unavailable; reconnect and resume");
  c.catching_up = false;
}

std::optional<std::int64_t> hub::apply_bounds(std::uint64_t id, const boost::system::result<user_log_bounds>& b) {
  std::lock_guard lock(mu_);
  auto it = conns_.find(id);
  if (it == conns_.end()) {
    return std::nullopt;
  }
  auto& c = it->second;
  if (!b) {
    stop_catch_up(c);
    return std::nullopt;
  }
  if (c.resume) {
    auto want = *c.resume;
    c.resume.reset();
    // Older than what the log retains, or ahead of it: start over.
    bool pruned = b->first_seq == 0 ? want < b->last_seq : want + 1 < b->first_seq;
    if (pruned || want > b->last_seq) {
      c.peer->send(reset_frame(b->last_seq));
      c.last = b->last_seq;
    } else {
      c.last = want;
    }
  } else if (c.last < 0) {
    c.last = b->last_seq;
  }
  return c.last;
}

hub::progress hub::apply_events(std::uint64_t id, const boost::system::result<std::vector<event>>& events) {
  std::lock_guard lock(mu_);
  auto it = conns_.find(id);
  if (it == conns_.end()) {
    return progress::done;
  }
  auto& c = it->second;
  if (!events) {
    stop_catch_up(c);
    return progress::done;
  }
  if (c.resume) {
    return progress::more;  // a newer resume replaces this read
  }
  // Replay no faster than the client reads: a backlog must not look like a
  // slow consumer.
  auto room = std::max<std::size_t>(1, cfg_.send_queue / 2);
  for (const auto& e : *events) {
    if (c.peer->queued() >= room) {
      return progress::full;
    }
    if (e.seq == c.last + 1) {
      c.peer->send(to_cloudevent(e));
      c.last = e.seq;
    }
  }
  if (static_cast<int>(events->size()) < page && !c.missed) {
    c.catching_up = false;
    return progress::done;
  }
  return progress::more;
}

asio::awaitable<void> hub::catch_up(std::shared_ptr<hub> self, std::uint64_t id) {
  asio::steady_timer backoff(co_await asio::this_coro::executor);
  for (;;) {
    auto st = self->next_step(id);
    if (!st) {
      co_return;
    }
    auto after = st->after;
    if (st->kind != start::none) {
      // A resume, or a start the handshake could not fix: the log's bounds.
      auto bounds = co_await user_bounds(*self->db_, st->user);
      auto applied = self->apply_bounds(id, bounds);
      if (!applied) {
        co_return;
      }
      after = *applied;
    }
    auto events = co_await user_events_after(*self->db_, st->user, after, page);
    auto p = self->apply_events(id, events);
    if (p == progress::done) {
      co_return;
    }
    if (p == progress::full) {
      backoff.expires_after(std::chrono::milliseconds(10));
      co_await backoff.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }
}

asio::awaitable<void> hub::follow(std::shared_ptr<hub> self, event_bus* bus) {
  std::int64_t start_pos = 0;
  for (;;) {
    auto seen = bus->generation();
    auto end = co_await log_end(*self->db_);
    if (end) {
      start_pos = *end;
      break;
    }
    co_await bus->wait(seen);
  }
  log_reader reader(self->db_, start_pos);
  self->following_ = true;
  for (;;) {
    auto seen = bus->generation();
    auto batch = co_await reader.next(page);
    if (!batch) {
      co_await bus->wait(seen);
      continue;
    }
    if (batch->empty()) {
      co_await bus->wait_for_log(seen, reader);
      continue;
    }
    self->deliver_now(*batch);
  }
}

void hub::deliver_now(const std::vector<event>& batch) {
  auto now = time::now();
  std::lock_guard lock(mu_);
  for (const auto& e : batch) {
    auto users = by_user_.find(e.user);
    if (users == by_user_.end()) {
      continue;
    }
    std::shared_ptr<const std::string> frame;
    for (auto id : users->second) {
      auto& c = conns_.at(id);
      if (c.catching_up) {
        c.missed = true;  // the catch-up loop reads it from the log
        continue;
      }
      if (e.seq <= c.last) {
        continue;  // already sent
      }
      if (e.seq > c.last + 1) {
        start_catch_up(id);  // a gap: fill it from the log first
        continue;
      }
      if (!frame) {
        frame = std::make_shared<const std::string>(to_cloudevent(e));
      }
      c.peer->send(frame);
      c.last = e.seq;
      delivery_.observe(std::chrono::duration<double>(now - e.time).count());
    }
  }
}

}  // namespace todo::sync
