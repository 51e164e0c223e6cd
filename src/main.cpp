// todo-server: the service, plus `token` for local tokens.
#include "todo/app.hpp"
#include "todo/config.hpp"
#include "todo/db.hpp"
#include "todo/dispatch.hpp"
#include "todo/event_log.hpp"
#include "todo/http_server.hpp"
#include "todo/json.hpp"
#include "todo/kafka.hpp"
#include "todo/kafka_relay.hpp"
#include "todo/jwt.hpp"
#include "todo/log.hpp"
#include "todo/metrics.hpp"
#include "todo/migrations.hpp"
#include "todo/rate_limit.hpp"
#include "todo/router.hpp"
#include "todo/websocket.hpp"
#include "activity/activity.hpp"
#include "recurrence/recurrence.hpp"
#include "reminders/reminders.hpp"
#include "sync/sync.hpp"
#include "tasks/tasks.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

namespace asio = boost::asio;

todo::environment read_environment() {
  todo::environment env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string_view::npos) {
      env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
    }
  }
  return env;
}

void usage() {
  std::cout << "Usage:\n"
               "  todo-server [flags]                 run the service\n"
               "  todo-server token --user ID [--ttl 24h]\n"
               "                                      print an HS256 token signed with JWT_SECRET\n"
               "  todo-server broker [--brokers N] [--control]\n"
               "                                      run the embedded Kafka-protocol broker alone\n"
               "  todo-server --print-routes [flags]\n"
               "                                      print the route table: method, pattern, access\n"
               "  todo-server --help | --version\n\n"
               "Every setting is an environment variable or the flag beside it:\n"
            << todo::config_help();
}

int token_command(const todo::environment& env, std::span<const std::string> args) {
  std::string user;
  std::string secret;
  if (auto it = env.find("JWT_SECRET"); it != env.end()) {
    secret = it->second;
  }
  std::chrono::milliseconds ttl = std::chrono::hours(24);
  for (std::size_t i = 0; i < args.size(); ++i) {
    auto next = [&]() -> std::string { return i + 1 < args.size() ? args[++i] : std::string{}; };
    if (args[i] == "--user") {
      user = next();
    } else if (args[i] == "--ttl") {
      if (!todo::parse_duration(next(), ttl) || ttl.count() < 1000) {
        std::cerr << "--ttl: must be a duration such as 30m, 24h, 7d\n";
        return 2;
      }
    } else if (args[i] == "--jwt-secret") {
      secret = next();
    } else {
      std::cerr << args[i] << ": unknown flag for token\n";
      return 2;
    }
  }
  if (user.empty() || user.size() > 128) {
    std::cerr << "--user: required, 1 to 128 bytes\n";
    return 2;
  }
  if (secret.size() < 32) {
    std::cerr << "JWT_SECRET: must be set and at least 32 bytes long\n";
    return 2;
  }
  auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
  std::cout << todo::jwt::sign_hs256(secret, user, ttl.count() / 1000, now.count()) << "\n";
  return 0;
}

// Every route and subscription; serve() and --print-routes share it, so the
// printed table is the one the server runs.
void install_modules(todo::app& app) {
  todo::install_ops_routes(app);
  todo::recurrence::install(app);  // before tasks, which asks it for rules
  todo::tasks::install(app);
  todo::activity::install(app);
  todo::sync::install(app);
  todo::reminders::install(app);
}

// The configuration, or nothing after one line per problem on stderr.
std::optional<todo::config> load_config_or_report(const todo::environment& env, std::span<const std::string> args) {
  auto loaded = todo::load_config(env, args);
  for (const auto& e : loaded.errors) {
    std::cerr << "todo-server: " << e << "\n";
  }
  if (!loaded.errors.empty()) {
    return std::nullopt;
  }
  return std::move(loaded.cfg);
}

// The token verifier, or nothing after a line naming the unusable key.
std::optional<todo::jwt::verifier> make_verifier_or_report(const todo::config& cfg) {
  try {
    return todo::jwt::verifier(todo::jwt::keys{cfg.auth.jwt_secret, cfg.auth.jwt_public_key_pem});
  } catch (const std::exception& e) {
    std::cerr << "todo-server: JWT_PUBLIC_KEY_FILE: " << e.what() << "\n";
    return std::nullopt;
  }
}

// --print-routes: the table serve() would route by, one "METHOD PATTERN
// ACCESS" line per route, from the same install functions. Nothing is
// started: no socket, no database connection, no broker.
int print_routes(const todo::environment& env, std::span<const std::string> args) {
  auto loaded = load_config_or_report(env, args);
  if (!loaded) {
    return 2;
  }
  const todo::config cfg = std::move(*loaded);
  todo::log::set_level(todo::log::level::error);  // logs share stdout with the table
  auto verifier = make_verifier_or_report(cfg);
  if (!verifier) {
    return 2;
  }
  asio::io_context ioc(1);
  todo::metrics::registry metrics;
  auto db = todo::db::pool::create(ioc, {.conninfo = cfg.db.url}, metrics);
  todo::router routes;
  std::atomic<bool> schema_ready{false};
  todo::event_bus bus(ioc, db, metrics, {.poll_interval = cfg.kafka.poll_interval});
  std::vector<todo::readiness_check> ready_checks;
  todo::app app{ioc, cfg, routes, db, metrics, bus, schema_ready, ready_checks, *verifier, nullptr};
  install_modules(app);
  for (const auto& r : routes.routes()) {
    std::cout << to_string(r.verb) << ' ' << r.pattern << ' ' << todo::to_string(r.acc) << '\n';
  }
  db->shutdown();
  for (const auto& f : app.on_stopped) {
    f();
  }
  return 0;
}

// Migrations, then everything that reads the schema.
asio::awaitable<void> apply_migrations(std::shared_ptr<todo::db::pool> db, std::atomic<bool>* ready,
                                       todo::event_bus* bus, todo::kafka_relay* relay,
                                       const std::vector<std::function<void()>>* then) {
  asio::steady_timer backoff(co_await asio::this_coro::executor);
  auto delay = std::chrono::milliseconds(200);
  for (;;) {
    auto r = co_await todo::migrate(*db);
    if (r) {
      bus->start();
      relay->start();
      for (const auto& f : *then) {
        f();
      }
      ready->store(true);
      todo::log::info("main", "schema ready", {});
      co_return;
    }
    todo::log::warn("main", "migrations not applied yet; retrying", {{"error", r.error().message()}});
    backoff.expires_after(delay);
    co_await backoff.async_wait(asio::use_awaitable);
    delay = std::min(delay * 2, std::chrono::milliseconds(5000));
  }
}

int serve(const todo::environment& env, std::span<const std::string> args) {
  auto loaded = load_config_or_report(env, args);
  if (!loaded) {
    return 2;
  }
  std::vector<std::pair<std::string, std::string>> env_pairs(env.begin(), env.end());
  auto kafka_properties = todo::kafka::passthrough(env_pairs);
  auto kafka_errors = todo::kafka::validate(kafka_properties);
  if (!kafka_errors.empty()) {
    for (const auto& e : kafka_errors) {
      std::cerr << "todo-server: " << e << "\n";
    }
    return 2;
  }
  const todo::config cfg = std::move(*loaded);
  todo::log::set_level(cfg.log_level);

  auto verifier = make_verifier_or_report(cfg);
  if (!verifier) {
    return 2;
  }

  asio::io_context ioc(static_cast<int>(cfg.threads));
  todo::metrics::registry metrics;
  auto db = todo::db::pool::create(ioc,
                                   {.conninfo = cfg.db.url,
                                    .size = cfg.db.pool_size,
                                    .acquire_timeout = cfg.db.acquire_timeout,
                                    .max_waiters = cfg.db.max_waiters,
                                    .connect_timeout = cfg.db.connect_timeout,
                                    .statement_timeout = cfg.db.statement_timeout},
                                   metrics);
  todo::router routes;
  std::atomic<bool> schema_ready{false};
  todo::event_bus bus(ioc, db, metrics, {.poll_interval = cfg.kafka.poll_interval});
  std::vector<todo::readiness_check> ready_checks;
  todo::app app{ioc, cfg, routes, db, metrics, bus, schema_ready, ready_checks, *verifier, nullptr};

  // Kafka: the embedded broker unless KAFKA_BROKERS names a cluster.
  std::unique_ptr<todo::kafka::mock_cluster> embedded_broker;
  todo::kafka::producer_config producer_cfg{.extra = kafka_properties};
  if (cfg.kafka.embedded()) {
    embedded_broker = std::make_unique<todo::kafka::mock_cluster>(
        1, std::vector<todo::kafka::topic_spec>{{cfg.kafka.topic_task_events, 3},
                                                {cfg.kafka.topic_reminders, 1},
                                                {cfg.kafka.topic_task_updates, 3}});
    producer_cfg.brokers = embedded_broker->bootstrap();
    todo::log::info("main", "embedded kafka broker", {{"bootstrap", std::string_view(producer_cfg.brokers)}});
  } else {
    producer_cfg.brokers = cfg.kafka.brokers;
  }
  todo::kafka_relay relay(ioc, db, bus, producer_cfg,
                          {.topic_task_events = cfg.kafka.topic_task_events,
                           .topic_reminders = cfg.kafka.topic_reminders,
                           .topic_task_updates = cfg.kafka.topic_task_updates},
                          metrics);
  ready_checks.push_back([&relay](todo::json::writer& w) {
    auto s = relay.status();
    // Only the relaying replica talks to Kafka; the others stand by.
    bool ok = !s.leader || s.brokers_up;
    w.key("kafka").value(!s.leader ? "standby" : (s.brokers_up ? "ok" : "down"));
    w.key("kafka_lag").value(s.lag);
    return ok;
  });
  install_modules(app);

  todo::dispatcher dispatch(routes, *verifier, metrics, &schema_ready);
  todo::rate_limiter user_limiter(cfg.limits.user_rate, cfg.limits.user_burst);
  dispatch.limit_users(&user_limiter);
  todo::rate_limiter address_limiter(cfg.limits.ip_rate, cfg.limits.ip_burst);
  dispatch.limit_addresses(&address_limiter, cfg.http.loopback_exempt);
  todo::http_server server(ioc, cfg.http, dispatch, metrics);
  if (app.websocket) {
    server.serve_websocket("/api/v1/ws", *app.websocket,
                           {.max_queued_frames = cfg.websocket.send_queue,
                            .max_message_bytes = cfg.websocket.max_message_bytes,
                            .ping_interval = cfg.websocket.ping_interval,
                            .pong_timeout = cfg.websocket.pong_timeout},
                           metrics);
  }
  std::uint16_t port = 0;
  try {
    port = server.start();
  } catch (const std::exception& e) {
    std::cerr << "todo-server: PORT: cannot listen on " << cfg.http.bind_address << ":" << cfg.http.port << ": "
              << e.what() << "\n";
    return 2;
  }
  todo::log::info("main", "listening",
                  {{"address", std::string_view(cfg.http.bind_address)}, {"port", static_cast<int>(port)},
                   {"threads", cfg.threads}});

  asio::co_spawn(asio::make_strand(ioc), apply_migrations(db, &schema_ready, &bus, &relay, &app.on_schema_ready), [](std::exception_ptr e) {
    if (e) {
      todo::log::error("main", "migration task failed", {});
    }
  });

  // Kafka's share of the shutdown, after the drain: the relay's last read of
  // the log, then librdkafka's deliveries once the io_context has stopped.
  constexpr auto kafka_shutdown = std::chrono::seconds(5);
  std::chrono::steady_clock::time_point kafka_deadline{};
  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int sig) {
    if (ec) {
      return;
    }
    todo::log::info("main", "draining", {{"signal", sig}});
    server.drain([&] {
      // Every answered request has committed by now; the relay may not have
      // read the last of them yet.
      kafka_deadline = std::chrono::steady_clock::now() + kafka_shutdown;
      asio::co_spawn(ioc, relay.finish(kafka_deadline), [&ioc](std::exception_ptr e) {
        if (e) {
          todo::log::error("main", "relay's last read failed", {});
        }
        ioc.stop();
      });
    });
  });

  std::vector<std::thread> workers;
  for (unsigned i = 1; i < cfg.threads; ++i) {
    workers.emplace_back([&ioc] { ioc.run(); });
  }
  ioc.run();
  for (auto& t : workers) {
    t.join();
  }
  db->shutdown();
  for (const auto& f : app.on_stopped) {
    f();
  }
  // Off the I/O threads now: give librdkafka the rest of Kafka's share to
  // deliver what it holds. Whatever it could not is resent after restart
  // (same ids).
  auto kafka_left =
      std::chrono::duration_cast<std::chrono::milliseconds>(kafka_deadline - std::chrono::steady_clock::now());
  relay.flush(std::max(kafka_left, std::chrono::milliseconds(0)));
  todo::log::info("main", "stopped", {});
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto env = read_environment();
  if (!args.empty() && (args[0] == "--help" || args[0] == "-h" || args[0] == "help")) {
    usage();
    return 0;
  }
  if (!args.empty() && args[0] == "--version") {
    std::cout << "todo-server 0.1.0\n";
    return 0;
  }
  if (!args.empty() && args[0] == "broker") {
    return todo::kafka::run_broker_command(std::vector<std::string>(args.begin() + 1, args.end()));
  }
  if (!args.empty() && args[0] == "token") {
    return token_command(env, std::span(args).subspan(1));
  }
  if (!args.empty() && args[0] == "--print-routes") {
    return print_routes(env, std::span(args).subspan(1));
  }
  return serve(env, args);
}
