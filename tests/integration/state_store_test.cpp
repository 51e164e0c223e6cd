// The state stores: the direct one against the real PostgreSQL; the Dapr
// client and its state store against a scripted local HTTP server (request
// shapes, connection handling) and against the stand-in sidecar (semantics).
#include "pg_fixture.hpp"
#include "todo/dapr.hpp"
#include "todo/json_parse.hpp"
#include "todo/state_store.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <thread>

extern char** environ;

using namespace todo;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

const db::statement row_stmt{
    "it_state_row",
    "SELECT convert_from(value, 'UTF8'), etag::text, updated_at IS NULL, expires_at IS NULL FROM state WHERE key = $1"};
const db::statement columns_stmt{
    "it_state_columns",
    "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) FROM information_schema.columns"
    " WHERE table_schema = current_schema() AND table_name = 'state'"};
const db::statement expire_stmt{"it_state_expire",
                                "UPDATE state SET expires_at = now() - interval '1 minute' WHERE key = $1"};

std::string fresh_key() { return "it-" + uuid::v7(); }

db::rows sql(test::pg_fixture& f, const db::statement& s, std::vector<db::param> ps) {
  db::query q{&s, std::move(ps)};
  auto r = test::run(f.io, f.pool->execute_one(std::move(q)));
  REQUIRE(r.has_value());
  return std::move(*r);
}

std::int64_t count_of(std::string_view value) {
  auto parsed = json::parse_body(value);
  REQUIRE(parsed.error.empty());
  std::int64_t n = -1;
  REQUIRE(parsed.root["count"].get(n) == simdjson::SUCCESS);
  return n;
}

// Read-modify-write until `times` increments went through; returns how many
// attempts lost to a concurrent writer.
asio::awaitable<int> increment(std::shared_ptr<state_store> s, std::string key, int times) {
  int conflicts = 0;
  for (int done = 0; done < times;) {
    auto reading = s->get(key);
    auto got = co_await std::move(reading);
    if (!got || !*got) {
      throw std::runtime_error("get failed");
    }
    std::int64_t n = 0;
    {
      auto parsed = json::parse_body((*got)->value);
      if (!parsed.error.empty() || parsed.root["count"].get(n) != simdjson::SUCCESS) {
        throw std::runtime_error("bad counter value");
      }
    }
    std::string next = "{\"count\":" + std::to_string(n + 1) + "}";
    auto saving = s->save(key, std::move(next), std::move((*got)->etag));
    auto saved = co_await std::move(saving);
    if (saved) {
      ++done;
    } else if (saved.error() == dapr::errc::conflict) {
      ++conflicts;
    } else {
      throw std::runtime_error("save failed: " + saved.error().message());
    }
  }
  co_return conflicts;
}

// `writers` coroutines on 4 threads, 5 increments each, from 0: exactly
// 5 * writers at the end.
void check_concurrent_counter(asio::io_context& io, std::shared_ptr<state_store> s, int writers) {
  auto key = fresh_key();
  REQUIRE(test::run(io, s->save(key, "{\"count\":0}", "")).has_value());
  std::vector<std::future<int>> results;
  for (int i = 0; i < writers; ++i) {
    results.push_back(asio::co_spawn(asio::make_strand(io), increment(s, key, 5), asio::use_future));
  }
  auto ready = [&] {
    for (auto& r : results) {
      if (r.wait_for(0s) != std::future_status::ready) {
        return false;
      }
    }
    return true;
  };
  io.restart();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      auto until = std::chrono::steady_clock::now() + 60s;
      while (!ready() && std::chrono::steady_clock::now() < until) {
        io.run_one_for(10ms);
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  REQUIRE(ready());
  int conflicts = 0;
  for (auto& r : results) {
    conflicts += r.get();
  }
  auto got = test::run(io, s->get(key));
  REQUIRE(got.has_value());
  REQUIRE(got->has_value());
  INFO("attempts lost to a concurrent writer: " << conflicts);
  CHECK(count_of((*got)->value) == 5 * writers);
}

}  // namespace

TEST_CASE("postgres state store: a missing key reads as nothing", "[state_store]") {
  test::pg_fixture f;
  auto s = make_postgres_state_store(f.pool);
  CHECK(std::string(s->kind()) == "postgres");
  auto got = test::run(f.io, s->get(fresh_key()));
  REQUIRE(got.has_value());
  CHECK_FALSE(got->has_value());
}

TEST_CASE("postgres state store: values round trip verbatim, with a new ETag per write", "[state_store]") {
  test::pg_fixture f;
  auto s = make_postgres_state_store(f.pool);
  auto key = fresh_key();
  // A backslash and non-ASCII text survive the bytea column.
  std::string value = "{\"b\":1,\"a\":\"x\\\\y \\\"q\\\" \xc3\xa9 \\u2603\"}";
  REQUIRE(test::run(f.io, s->save(key, value, "")).has_value());
  auto first = test::run(f.io, s->get(key));
  REQUIRE(first.has_value());
  REQUIRE(first->has_value());
  CHECK((*first)->value == value);
  CHECK(uuid::normalize((*first)->etag).has_value());

  REQUIRE(test::run(f.io, s->save(key, "[1,2]", "")).has_value());
  auto second = test::run(f.io, s->get(key));
  REQUIRE(second->has_value());
  CHECK((*second)->value == "[1,2]");
  CHECK((*second)->etag != (*first)->etag);

  REQUIRE(test::run(f.io, s->save(key, "3", (*second)->etag)).has_value());
  auto third = test::run(f.io, s->get(key));
  REQUIRE(third->has_value());
  CHECK((*third)->value == "3");
  CHECK((*third)->etag != (*second)->etag);
}

TEST_CASE("postgres state store: rows are Dapr's state.postgresql v2 rows", "[state_store]") {
  test::pg_fixture f;
  auto columns = sql(f, columns_stmt, {});
  CHECK(columns.text(0, 0) ==
        "key text, value bytea, etag uuid, created_at timestamp with time zone, "
        "updated_at timestamp with time zone, expires_at timestamp with time zone");

  auto s = make_postgres_state_store(f.pool);
  auto key = fresh_key();
  REQUIRE(test::run(f.io, s->save(key, "{\"n\":1}", "")).has_value());
  CHECK(sql(f, row_stmt, {key}).size() == 0);
  auto row = sql(f, row_stmt, {"todo-server||" + key});
  REQUIRE(row.size() == 1);
  CHECK(row.text(0, 0) == "{\"n\":1}");
  CHECK(row.boolean(0, 2));  // inserted, never updated
  CHECK(row.boolean(0, 3));
  auto got = test::run(f.io, s->get(key));
  REQUIRE(got->has_value());
  CHECK((*got)->etag == row.text(0, 1));

  REQUIRE(test::run(f.io, s->save(key, "{\"n\":2}", "")).has_value());
  auto updated = sql(f, row_stmt, {"todo-server||" + key});
  CHECK_FALSE(updated.boolean(0, 2));
}

TEST_CASE("postgres state store: ETag writes are first-write-wins", "[state_store]") {
  test::pg_fixture f;
  auto s = make_postgres_state_store(f.pool);
  auto key = fresh_key();
  REQUIRE(test::run(f.io, s->save(key, "{\"v\":1}", "")).has_value());
  auto read = test::run(f.io, s->get(key));
  REQUIRE(read->has_value());
  auto stale = (*read)->etag;

  REQUIRE(test::run(f.io, s->save(key, "{\"v\":2}", stale)).has_value());
  auto again = test::run(f.io, s->save(key, "{\"v\":3}", stale));
  REQUIRE_FALSE(again.has_value());
  CHECK(again.error() == dapr::errc::conflict);
  auto now = test::run(f.io, s->get(key));
  CHECK((*now)->value == "{\"v\":2}");

  SECTION("an ETag for an absent key conflicts") {
    auto absent = test::run(f.io, s->save(fresh_key(), "{}", stale));
    REQUIRE_FALSE(absent.has_value());
    CHECK(absent.error() == dapr::errc::conflict);
  }
  SECTION("an ETag that is no UUID conflicts, it is no SQL error") {
    for (std::string bad : {"not-a-uuid", "1234", "'; DROP TABLE state; --"}) {
      auto r = test::run(f.io, s->save(key, "{}", bad));
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error() == dapr::errc::conflict);
      auto removed = test::run(f.io, s->remove(key, bad));
      REQUIRE_FALSE(removed.has_value());
      CHECK(removed.error() == dapr::errc::conflict);
    }
    CHECK((*test::run(f.io, s->get(key)))->value == "{\"v\":2}");
  }
}

TEST_CASE("postgres state store: remove", "[state_store]") {
  test::pg_fixture f;
  auto s = make_postgres_state_store(f.pool);
  auto key = fresh_key();

  // Without an ETag: also fine for an absent key.
  CHECK(test::run(f.io, s->remove(key, "")).has_value());
  REQUIRE(test::run(f.io, s->save(key, "1", "")).has_value());
  CHECK(test::run(f.io, s->remove(key, "")).has_value());
  CHECK_FALSE(test::run(f.io, s->get(key))->has_value());

  // With one: only the current row; an absent key conflicts.
  REQUIRE(test::run(f.io, s->save(key, "1", "")).has_value());
  auto old = (*test::run(f.io, s->get(key)))->etag;
  REQUIRE(test::run(f.io, s->save(key, "2", "")).has_value());
  auto stale = test::run(f.io, s->remove(key, old));
  REQUIRE_FALSE(stale.has_value());
  CHECK(stale.error() == dapr::errc::conflict);
  auto current = (*test::run(f.io, s->get(key)))->etag;
  CHECK(test::run(f.io, s->remove(key, current)).has_value());
  CHECK_FALSE(test::run(f.io, s->get(key))->has_value());
  auto gone = test::run(f.io, s->remove(key, current));
  REQUIRE_FALSE(gone.has_value());
  CHECK(gone.error() == dapr::errc::conflict);
}

TEST_CASE("postgres state store: an expired row is absent", "[state_store]") {
  test::pg_fixture f;
  auto s = make_postgres_state_store(f.pool);
  auto key = fresh_key();
  REQUIRE(test::run(f.io, s->save(key, "{\"v\":1}", "")).has_value());
  auto etag = (*test::run(f.io, s->get(key)))->etag;
  CHECK(sql(f, expire_stmt, {"todo-server||" + key}).affected() == 1);

  CHECK_FALSE(test::run(f.io, s->get(key))->has_value());
  auto update = test::run(f.io, s->save(key, "{\"v\":2}", etag));
  REQUIRE_FALSE(update.has_value());
  CHECK(update.error() == dapr::errc::conflict);

  // A plain write brings it back, without the expiry.
  REQUIRE(test::run(f.io, s->save(key, "{\"v\":3}", "")).has_value());
  auto back = test::run(f.io, s->get(key));
  REQUIRE(back->has_value());
  CHECK((*back)->value == "{\"v\":3}");
  CHECK(sql(f, row_stmt, {"todo-server||" + key}).boolean(0, 3));
}

TEST_CASE("postgres state store: a value must be JSON and a key must not hold ||", "[state_store]") {
  test::pg_fixture f;
  auto s = make_postgres_state_store(f.pool);
  auto bad_value = test::run(f.io, s->save(fresh_key(), "{not json", ""));
  REQUIRE_FALSE(bad_value.has_value());
  CHECK(bad_value.error() == dapr::errc::rejected);
  auto bad_key = test::run(f.io, s->save("a||b", "1", ""));
  REQUIRE_FALSE(bad_key.has_value());
  CHECK(bad_key.error() == dapr::errc::rejected);
}

TEST_CASE("postgres state store: concurrent read-modify-write loops lose no update", "[state_store]") {
  test::pg_fixture f;
  check_concurrent_counter(f.io, make_postgres_state_store(f.pool), 20);
}

// ---------------------------------------------------------------------------
// The Dapr client against a scripted HTTP server on its own io_context and
// thread.

namespace {

struct seen_request {
  std::string method;
  std::string target;
  std::string body;
  std::string token;         // dapr-api-token
  std::string content_type;
  std::optional<std::string> if_match;
};

using response = bhttp::response<bhttp::string_body>;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

struct fake_sidecar {
  asio::io_context io;
  tcp::acceptor acceptor{io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  std::mutex mu;
  std::vector<seen_request> requests;
  std::atomic<int> connections{0};
  // Close each connection after this many answers, though they said
  // keep-alive (0: never).
  int close_after = 0;
  bool silent = false;  // read requests, never answer
  std::function<response(const seen_request&)> answer;  // set before the server starts
  std::thread thread;

  std::uint16_t port = 0;
  std::vector<seen_request> seen() {
    std::lock_guard lock(mu);
    return requests;
  }
};

// The server's coroutines hold a plain pointer: the fake stops its
// io_context, which destroys them, before it goes.
asio::awaitable<void> fake_session(fake_sidecar* f, tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  int answered = 0;
  for (;;) {
    bhttp::request<bhttp::string_body> req;
    auto [ec, n] = co_await bhttp::async_read(stream, buffer, req, use_tuple);
    if (ec) {
      co_return;
    }
    seen_request s{std::string(req.method_string()), std::string(req.target()), req.body(),
                   std::string(req["dapr-api-token"]), std::string(req[bhttp::field::content_type]), std::nullopt};
    if (req.find(bhttp::field::if_match) != req.end()) {
      s.if_match = std::string(req[bhttp::field::if_match]);
    }
    {
      std::lock_guard lock(f->mu);
      f->requests.push_back(s);
    }
    if (f->silent) {
      continue;
    }
    auto res = f->answer(s);
    res.keep_alive(true);
    res.prepare_payload();
    auto [wec, wn] = co_await bhttp::async_write(stream, res, use_tuple);
    if (wec) {
      co_return;
    }
    ++answered;
    if (f->close_after > 0 && answered >= f->close_after) {
      boost::system::error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
      co_return;
    }
  }
}

void rethrow(std::exception_ptr e) {
  if (e) {
    std::rethrow_exception(e);  // out of the server thread: the run aborts loudly
  }
}

asio::awaitable<void> fake_accept(fake_sidecar* f) {
  for (;;) {
    auto [ec, socket] = co_await f->acceptor.async_accept(use_tuple);
    if (ec) {
      co_return;
    }
    ++f->connections;
    asio::co_spawn(f->io, fake_session(f, std::move(socket)), rethrow);
  }
}

response no_content(const seen_request&) { return response{bhttp::status::no_content, 11}; }

// Starts the server; stops it and joins its thread when the last owner goes.
std::shared_ptr<fake_sidecar> start_fake(std::function<response(const seen_request&)> answer = no_content,
                                         int close_after = 0, bool silent = false) {
  auto f = std::shared_ptr<fake_sidecar>(new fake_sidecar, [](fake_sidecar* p) {
    p->io.stop();
    if (p->thread.joinable()) {
      p->thread.join();
    }
    delete p;
  });
  f->port = f->acceptor.local_endpoint().port();
  f->answer = std::move(answer);
  f->close_after = close_after;
  f->silent = silent;
  asio::co_spawn(f->io, fake_accept(f.get()), rethrow);
  f->thread = std::thread([p = f.get()] {
    auto guard = asio::make_work_guard(p->io);
    p->io.run();
  });
  return f;
}

struct client_fixture {
  explicit client_fixture(std::uint16_t port, std::string token = {}, std::chrono::milliseconds timeout = 2000ms)
      : client(std::make_shared<dapr::client>(
            io, dapr::client_options{.port = port, .api_token = std::move(token), .timeout = timeout}, metrics)) {}
  asio::io_context io;
  metrics::registry metrics;
  std::shared_ptr<dapr::client> client;
};

boost::system::result<dapr::reply> call(client_fixture& c, std::string method, std::string target,
                                        std::string body = {}) {
  return test::run(c.io, c.client->call(std::move(method), std::move(target), std::move(body)));
}

}  // namespace

TEST_CASE("dapr client: keep-alive, headers, and the answer as it came", "[state_store][dapr]") {
  auto fake = start_fake([](const seen_request&) {
    response res{bhttp::status::ok, 11};
    res.set(bhttp::field::etag, "abc-1");
    res.body() = "{\"x\":1}";
    return res;
  });
  client_fixture c(fake->port, "s3cret");
  auto first = call(c, "POST", "/v1.0/state/statestore", "[]");
  REQUIRE(first.has_value());
  CHECK(first->status == 200);
  CHECK(first->body == "{\"x\":1}");
  CHECK(first->etag == "abc-1");
  auto second = call(c, "GET", "/v1.0/state/statestore/k");
  REQUIRE(second.has_value());
  CHECK(fake->connections.load() == 1);

  auto seen = fake->seen();
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].token == "s3cret");
  CHECK(seen[0].content_type == "application/json");
  CHECK(seen[0].body == "[]");
  CHECK(seen[1].token == "s3cret");
  CHECK(seen[1].content_type.empty());

  // Idle, the client holds no timer and no pending operation.
  c.io.restart();
  c.io.run_for(5s);
  CHECK(c.io.stopped());
  CHECK(c.metrics.render().find("todo_dapr_calls_total{op=\"state_get\",outcome=\"2xx\"} 1") != std::string::npos);
}

TEST_CASE("dapr client: no token header without a token", "[state_store][dapr]") {
  auto fake = start_fake();
  client_fixture c(fake->port);
  REQUIRE(call(c, "GET", "/v1.0/healthz/outbound").has_value());
  auto seen = fake->seen();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].token.empty());
}

TEST_CASE("dapr client: a connection the sidecar closed while idle is replaced once", "[state_store][dapr]") {
  auto fake = start_fake(no_content, 1);
  client_fixture c(fake->port);
  for (int i = 0; i < 3; ++i) {
    auto r = call(c, "DELETE", "/v1.0-alpha1/jobs/j-1");
    REQUIRE(r.has_value());
    CHECK(r->status == 204);
  }
  CHECK(fake->seen().size() == 3);
  CHECK(fake->connections.load() == 3);
}

TEST_CASE("dapr client: unavailable when nothing listens or nothing answers", "[state_store][dapr]") {
  std::uint16_t closed_port = 0;
  {
    asio::io_context io;
    tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    closed_port = a.local_endpoint().port();
  }
  client_fixture nobody(closed_port);
  auto refused = call(nobody, "GET", "/v1.0/healthz/outbound");
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error() == dapr::errc::unavailable);
  CHECK_FALSE(test::run(nobody.io, nobody.client->healthy()));

  auto fake = start_fake(no_content, 0, true);
  client_fixture c(fake->port, {}, 300ms);
  auto started = std::chrono::steady_clock::now();
  auto r = call(c, "GET", "/v1.0/state/statestore/k");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == dapr::errc::unavailable);
  CHECK(std::chrono::steady_clock::now() - started < 5s);  // bounded by the deadline, not a benchmark
  CHECK(r.error().category().name() == std::string("dapr"));
}

TEST_CASE("dapr client: jobs and health", "[state_store][dapr]") {
  std::atomic<unsigned> status{204};
  auto fake = start_fake([&status](const seen_request&) {
    response res{static_cast<bhttp::status>(status.load()), 11};
    if (status != 204) {
      res.body() = "{\"errorCode\":\"DAPR_SCHEDULER_SCHEDULE_JOB\",\"message\":\"m\"}";
    }
    return res;
  });
  client_fixture c(fake->port);
  REQUIRE(test::run(c.io, c.client->schedule_job("r-1", "2026-03-02T16:45:00Z", "{\"task\":\"t1\"}")).has_value());
  auto seen = fake->seen();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].method == "POST");
  CHECK(seen[0].target == "/v1.0-alpha1/jobs/r-1");
  CHECK(seen[0].body ==
        "{\"dueTime\":\"2026-03-02T16:45:00Z\",\"data\":{\"task\":\"t1\"},\"overwrite\":true,"
        "\"failurePolicy\":{\"constant\":{\"interval\":\"5s\",\"maxRetries\":120}}}");

  REQUIRE(test::run(c.io, c.client->delete_job("r-1")).has_value());
  CHECK(fake->seen().back().method == "DELETE");
  CHECK(test::run(c.io, c.client->healthy()));
  CHECK(fake->seen().back().target == "/v1.0/healthz/outbound");

  status = 409;
  auto refused = test::run(c.io, c.client->schedule_job("r-1", "2026-03-02T16:45:00Z", "{}"));
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error() == dapr::errc::rejected);
  status = 500;
  CHECK_FALSE(test::run(c.io, c.client->healthy()));

  auto bad_name = test::run(c.io, c.client->schedule_job("R 1/x", "90s", "{}"));
  REQUIRE_FALSE(bad_name.has_value());
  CHECK(bad_name.error() == dapr::errc::rejected);
}

TEST_CASE("dapr state store: requests and answers", "[state_store][dapr]") {
  std::atomic<unsigned> status{204};
  auto fake = start_fake([&status](const seen_request& r) {
    response res{static_cast<bhttp::status>(status.load()), 11};
    if (r.method == "GET" && status == 200) {
      res.set(bhttp::field::etag, "e-2");
      res.body() = "{\"a\":1}";
    }
    return res;
  });
  client_fixture c(fake->port);
  auto s = make_dapr_state_store(c.client, "statestore");
  CHECK(std::string(s->kind()) == "dapr");

  REQUIRE(test::run(c.io, s->save("k/1 x", "{\"b\":2}", "")).has_value());
  REQUIRE(test::run(c.io, s->save("k", "[1]", "e-1")).has_value());
  REQUIRE(test::run(c.io, s->remove("k/1 x", "")).has_value());
  REQUIRE(test::run(c.io, s->remove("k", "e-3")).has_value());
  auto absent = test::run(c.io, s->get("k"));
  REQUIRE(absent.has_value());
  CHECK_FALSE(absent->has_value());
  status = 200;
  auto present = test::run(c.io, s->get("k/1 x"));
  REQUIRE(present.has_value());
  REQUIRE(present->has_value());
  CHECK((*present)->value == "{\"a\":1}");
  CHECK((*present)->etag == "e-2");

  auto seen = fake->seen();
  REQUIRE(seen.size() == 6);
  CHECK(seen[0].method == "POST");
  CHECK(seen[0].target == "/v1.0/state/statestore");
  CHECK(seen[0].body == "[{\"key\":\"k/1 x\",\"value\":{\"b\":2}}]");
  CHECK(seen[1].body == "[{\"key\":\"k\",\"value\":[1],\"etag\":\"e-1\",\"options\":{\"concurrency\":\"first-write\"}}]");
  CHECK(seen[2].method == "DELETE");
  CHECK(seen[2].target == "/v1.0/state/statestore/k%2F1%20x");
  CHECK_FALSE(seen[2].if_match.has_value());
  CHECK(seen[3].if_match == std::optional<std::string>("e-3"));
  CHECK(seen[5].target == "/v1.0/state/statestore/k%2F1%20x");

  status = 409;
  auto conflict = test::run(c.io, s->save("k", "1", "e-1"));
  REQUIRE_FALSE(conflict.has_value());
  CHECK(conflict.error() == dapr::errc::conflict);
  auto remove_conflict = test::run(c.io, s->remove("k", "e-1"));
  REQUIRE_FALSE(remove_conflict.has_value());
  CHECK(remove_conflict.error() == dapr::errc::conflict);
  status = 400;
  auto rejected = test::run(c.io, s->save("k", "1", ""));
  REQUIRE_FALSE(rejected.has_value());
  CHECK(rejected.error() == dapr::errc::rejected);
}

TEST_CASE("dapr client: many coroutines on many threads share the pool", "[state_store][dapr]") {
  auto fake = start_fake(no_content, 3);  // retries on closed connections happen under load too
  client_fixture c(fake->port);
  std::vector<std::future<boost::system::result<dapr::reply>>> calls;
  for (int i = 0; i < 200; ++i) {
    calls.push_back(asio::co_spawn(asio::make_strand(c.io),
                                   c.client->call("GET", "/v1.0/state/statestore/k" + std::to_string(i), ""),
                                   asio::use_future));
  }
  auto all_ready = [&] {
    for (auto& f : calls) {
      if (f.wait_for(0s) != std::future_status::ready) {
        return false;
      }
    }
    return true;
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      auto until = std::chrono::steady_clock::now() + 30s;
      while (!all_ready() && std::chrono::steady_clock::now() < until) {
        c.io.run_one_for(10ms);
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  REQUIRE(all_ready());
  int ok = 0;
  for (auto& f : calls) {
    auto r = f.get();
    if (r && r->status == 204) {
      ++ok;
    }
  }
  CHECK(ok == 200);
  CHECK(fake->seen().size() == 200);
}

// ---------------------------------------------------------------------------
// The same through the stand-in sidecar (tests/support/dapr_sidecar.py),
// keeping its state in the test database's `state` table.

namespace {

// The source tree: TODO_SOURCE_DIR, else the one in the CMakeCache.txt of the
// build tree holding this binary.
fs::path source_dir() {
  if (const char* d = std::getenv("TODO_SOURCE_DIR"); d != nullptr && *d != '\0') {
    return d;
  }
  for (auto p = fs::read_symlink("/proc/self/exe").parent_path(); p != p.root_path(); p = p.parent_path()) {
    std::ifstream cache(p / "CMakeCache.txt");
    std::string line;
    const std::string key = "CMAKE_HOME_DIRECTORY:INTERNAL=";
    while (std::getline(cache, line)) {
      if (line.starts_with(key)) {
        return line.substr(key.size());
      }
    }
  }
  throw std::runtime_error("source tree not found: set TODO_SOURCE_DIR");
}

// The sidecar as a child process; killed and reaped when it goes out of
// scope. Its log goes to a file, kept when a REQUIRE failed.
class sidecar_process {
 public:
  explicit sidecar_process(std::vector<std::string> extra) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      throw std::runtime_error("pipe2 failed");
    }
    std::vector<std::string> args{"/usr/bin/python3", (source_dir() / "tests/support/dapr_sidecar.py").string(),
                                  "--port", "0", "--app-port", std::to_string(closed_port())};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    log_ = fs::temp_directory_path() / ("todo-dapr-sidecar-" + uuid::v7() + ".log");
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int rc = ::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    if (rc != 0) {
      ::close(fds[0]);
      throw std::runtime_error("posix_spawn failed");
    }
    // "dapr-sidecar listening on 127.0.0.1:<port>"
    std::string out;
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (out.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fds[0], POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) {
        continue;
      }
      char buf[128];
      auto n = ::read(fds[0], buf, sizeof buf);
      if (n <= 0) {
        break;
      }
      out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    auto colon = out.rfind(':');
    port_ = colon == std::string::npos ? 0 : static_cast<std::uint16_t>(std::atoi(out.c_str() + colon + 1));
    if (port_ == 0) {
      stop();
      throw std::runtime_error("the sidecar did not report its port");
    }
  }
  ~sidecar_process() {
    stop();
    std::error_code ec;
    if (std::uncaught_exceptions() > 0) {
      std::cerr << "sidecar log: " << log_.string() << "\n";
    } else {
      fs::remove(log_, ec);
    }
  }
  sidecar_process(const sidecar_process&) = delete;
  sidecar_process& operator=(const sidecar_process&) = delete;

  std::uint16_t port() const { return port_; }
  void stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

 private:
  static std::uint16_t closed_port() {
    asio::io_context io;
    tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    return a.local_endpoint().port();
  }
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  fs::path log_;
};

struct sidecar_fixture : test::pg_fixture {
  explicit sidecar_fixture(std::string token = {})
      : sidecar(token.empty() ? std::vector<std::string>{"--pg-dsn", test::database_url()}
                              : std::vector<std::string>{"--pg-dsn", test::database_url(), "--api-token", token}),
        client(std::make_shared<dapr::client>(io, dapr::client_options{.port = sidecar.port(), .api_token = token},
                                              metrics)),
        store(make_dapr_state_store(client, "statestore")) {}
  sidecar_process sidecar;
  std::shared_ptr<dapr::client> client;
  std::shared_ptr<state_store> store;
};

std::int64_t member(std::string_view value, const char* name) {
  auto parsed = json::parse_body(value);
  REQUIRE(parsed.error.empty());
  std::int64_t n = -1;
  REQUIRE(parsed.root[name].get(n) == simdjson::SUCCESS);
  return n;
}

}  // namespace

TEST_CASE("dapr state store through the sidecar: the direct store's semantics", "[state_store][sidecar]") {
  sidecar_fixture f;
  auto& s = f.store;
  auto key = fresh_key();
  CHECK_FALSE(test::run(f.io, s->get(key))->has_value());

  // Stored re-serialized (compact, keys sorted): read by parsing.
  REQUIRE(test::run(f.io, s->save(key, "{ \"b\": 2, \"a\": 1 }", "")).has_value());
  auto first = test::run(f.io, s->get(key));
  REQUIRE(first.has_value());
  REQUIRE(first->has_value());
  CHECK(member((*first)->value, "a") == 1);
  CHECK(member((*first)->value, "b") == 2);

  REQUIRE(test::run(f.io, s->save(key, "{\"a\":3}", (*first)->etag)).has_value());
  auto second = test::run(f.io, s->get(key));
  CHECK((*second)->etag != (*first)->etag);
  auto stale = test::run(f.io, s->save(key, "{\"a\":4}", (*first)->etag));
  REQUIRE_FALSE(stale.has_value());
  CHECK(stale.error() == dapr::errc::conflict);
  CHECK(member((*test::run(f.io, s->get(key)))->value, "a") == 3);
  auto absent = test::run(f.io, s->save(fresh_key(), "{}", (*first)->etag));
  REQUIRE_FALSE(absent.has_value());
  CHECK(absent.error() == dapr::errc::conflict);

  auto stale_remove = test::run(f.io, s->remove(key, (*first)->etag));
  REQUIRE_FALSE(stale_remove.has_value());
  CHECK(stale_remove.error() == dapr::errc::conflict);
  CHECK(test::run(f.io, s->remove(key, (*second)->etag)).has_value());
  CHECK_FALSE(test::run(f.io, s->get(key))->has_value());
  CHECK(test::run(f.io, s->remove(key, "")).has_value());
  auto gone = test::run(f.io, s->remove(key, (*second)->etag));
  REQUIRE_FALSE(gone.has_value());
  CHECK(gone.error() == dapr::errc::conflict);
}

TEST_CASE("dapr state store through the sidecar: shares rows with the direct store", "[state_store][sidecar]") {
  sidecar_fixture f;
  auto direct = make_postgres_state_store(f.pool);
  auto key = fresh_key();
  REQUIRE(test::run(f.io, direct->save(key, "{\"n\":1}", "")).has_value());
  auto via_direct = test::run(f.io, direct->get(key));
  auto via_sidecar = test::run(f.io, f.store->get(key));
  REQUIRE(via_sidecar.has_value());
  REQUIRE(via_sidecar->has_value());
  CHECK((*via_sidecar)->value == "{\"n\":1}");
  CHECK((*via_sidecar)->etag == (*via_direct)->etag);

  REQUIRE(test::run(f.io, f.store->save(key, "{\"n\":2}", (*via_sidecar)->etag)).has_value());
  auto back = test::run(f.io, direct->get(key));
  CHECK(member((*back)->value, "n") == 2);
  auto stale = test::run(f.io, direct->save(key, "{\"n\":3}", (*via_direct)->etag));
  REQUIRE_FALSE(stale.has_value());
  CHECK(stale.error() == dapr::errc::conflict);

  // Expired rows are absent for both.
  CHECK(sql(f, expire_stmt, {"todo-server||" + key}).affected() == 1);
  CHECK_FALSE(test::run(f.io, f.store->get(key))->has_value());
  auto expired = test::run(f.io, f.store->save(key, "{\"n\":4}", (*back)->etag));
  REQUIRE_FALSE(expired.has_value());
  CHECK(expired.error() == dapr::errc::conflict);
}

TEST_CASE("dapr state store through the sidecar: concurrent read-modify-write loops lose no update",
          "[state_store][sidecar]") {
  sidecar_fixture f;
  // The sidecar answers 500 "connection pool exhausted" beyond 16 requests
  // at once (its psycopg2 pool; daprd's pgx pool waits instead).
  check_concurrent_counter(f.io, f.store, 12);
}

TEST_CASE("dapr client through the sidecar: jobs, health, token, and a stopped sidecar", "[state_store][sidecar]") {
  sidecar_fixture f("tok-1");
  CHECK(test::run(f.io, f.client->healthy()));
  auto name = "it-" + uuid::v7().substr(24);  // the random part
  REQUIRE(test::run(f.io, f.client->schedule_job(name, "2099-01-01T00:00:00Z", "{\"task\":\"t1\"}")).has_value());
  REQUIRE(test::run(f.io, f.client->schedule_job(name, "2099-01-02T00:00:00Z", "{\"task\":\"t2\"}")).has_value());
  auto job = test::run(f.io, f.client->call("GET", "/v1.0-alpha1/jobs/" + name, ""));
  REQUIRE(job.has_value());
  REQUIRE(job->status == 200);
  auto parsed = json::parse_body(job->body);
  REQUIRE(parsed.error.empty());
  std::string_view due, interval, task;
  std::int64_t retries = 0;
  CHECK(parsed.root["dueTime"].get(due) == simdjson::SUCCESS);
  CHECK(due == "2099-01-02T00:00:00Z");
  CHECK(parsed.root["data"]["value"]["task"].get(task) == simdjson::SUCCESS);
  CHECK(task == "t2");
  CHECK(parsed.root["failurePolicy"]["constant"]["interval"].get(interval) == simdjson::SUCCESS);
  CHECK(interval == "5s");
  CHECK(parsed.root["failurePolicy"]["constant"]["maxRetries"].get(retries) == simdjson::SUCCESS);
  CHECK(retries == 120);
  REQUIRE(test::run(f.io, f.client->delete_job(name)).has_value());
  CHECK(test::run(f.io, f.client->call("GET", "/v1.0-alpha1/jobs/" + name, ""))->status == 500);
  CHECK(test::run(f.io, f.client->delete_job(name)).has_value());  // unknown: 204 too

  // Without the token: 401, except for the health routes.
  dapr::client anonymous(f.io, {.port = f.sidecar.port()}, f.metrics);
  auto refused = test::run(f.io, anonymous.call("GET", "/v1.0/state/statestore/k", ""));
  REQUIRE(refused.has_value());
  CHECK(refused->status == 401);
  auto job_refused = test::run(f.io, anonymous.schedule_job(name, "2099-01-01T00:00:00Z", "{}"));
  REQUIRE_FALSE(job_refused.has_value());
  CHECK(job_refused.error() == dapr::errc::rejected);
  CHECK(test::run(f.io, anonymous.healthy()));

  // Its pooled connection gone with it, the next call finds nobody.
  f.sidecar.stop();
  auto down = test::run(f.io, f.store->get("k"));
  REQUIRE_FALSE(down.has_value());
  CHECK(down.error() == dapr::errc::unavailable);
  CHECK_FALSE(test::run(f.io, f.client->healthy()));
}
