#pragma once
// The whole configuration, parsed once in main from the environment and
// --flags, validated whole, then immutable. Components get their piece.
#include "todo/log.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace todo {

struct http_config {
  std::string bind_address = "0.0.0.0";
  std::uint16_t port = 8080;
  std::chrono::milliseconds header_timeout{10'000};  // to receive a request's headers
  std::chrono::milliseconds body_timeout{30'000};    // to receive its body
  std::chrono::milliseconds idle_timeout{60'000};    // keep-alive between requests
  std::chrono::milliseconds drain_timeout{10'000};   // SIGTERM: finish in-flight work
  std::size_t max_body_bytes = 1024 * 1024;          // larger bodies: 413
  std::size_t max_header_bytes = 16 * 1024;          // larger request heads: 400
  std::size_t max_connections = 20'000;              // open connections, WebSockets included; then 503
  std::size_t max_connections_per_ip = 1000;         // per client address (IPv6: per /64); then 429
  bool loopback_exempt = true;                       // per-address limits skip 127.0.0.0/8 and ::1
};

struct db_config {
  std::string url;
  std::size_t pool_size = 16;
  std::chrono::milliseconds acquire_timeout{2000};
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds statement_timeout{5000};
  std::size_t max_waiters = 256;  // callers queued for a connection; more: 503 at once
};

struct auth_config {
  std::string jwt_secret;           // HS256; empty = not accepted
  std::string jwt_public_key_file;  // RS256 PEM path; empty = not accepted
  std::string jwt_public_key_pem;   // its contents, read at start
  std::string cursor_secret;        // signs page cursors; empty = derived from jwt_secret
};

struct kafka_config {
  std::string brokers;  // empty or "embedded": the in-process mock cluster
  std::string topic_task_events = "task-events";
  std::string topic_reminders = "reminders";
  std::string topic_task_updates = "task-updates";
  std::chrono::milliseconds poll_interval{100};  // how often the log is read for other replicas' commits
  bool embedded() const { return brokers.empty() || brokers == "embedded"; }
};

struct websocket_config {
  std::size_t max_per_user = 20;
  std::size_t max_connections = 10'000;
  std::size_t send_queue = 1024;  // frames; a connection behind by more is closed (1008)
  std::size_t max_message_bytes = 64 * 1024;  // a larger client message closes the connection (1009)
  std::chrono::milliseconds ping_interval{20'000};
  std::chrono::milliseconds pong_timeout{60'000};
};

struct limits_config {
  double user_rate = 100;   // requests a second per user; 0 = unlimited
  double user_burst = 200;  // bucket size
  double ip_rate = 1000;    // requests a second per client address (IPv6: per /64); 0 = unlimited
  double ip_burst = 2000;
};

struct notify_config {
  // Local and test use only: webhook targets may be http:// and loopback or
  // private addresses.
  bool webhook_allow_insecure = false;
  std::string smtp_url;   // empty: no e-mail channel
  std::string smtp_from = "todo-server@localhost";
  int max_attempts = 8;   // per channel, then dead-lettered
  std::chrono::milliseconds retry_base{2000};  // first retry after about this, doubling, with jitter
};

struct dapr_config {
  std::uint16_t http_port = 0;  // 0: no sidecar; the embedded scheduler and state store
  std::string state_store = "statestore";
  std::string api_token;      // DAPR_API_TOKEN: sent to the sidecar
  std::string app_api_token;  // APP_API_TOKEN: required from the sidecar on /job/*
  std::chrono::milliseconds reconcile_interval{30'000};
  bool enabled() const { return http_port != 0; }
};

struct config {
  http_config http;
  notify_config notify;
  dapr_config dapr;
  limits_config limits;
  kafka_config kafka;
  websocket_config websocket;
  db_config db;
  auth_config auth;
  log::level log_level = log::level::info;
  unsigned threads = 0;  // resolved to the number of cores
};

struct config_result {
  config cfg;
  std::vector<std::string> errors;  // one line per bad variable
};

using environment = std::map<std::string, std::string, std::less<>>;

// `args` are the flags after the program (and subcommand) name.
config_result load_config(const environment& env, std::span<const std::string> args);
std::string config_help();

// "250ms", "30s", "5m", "24h", "1h30m" → milliseconds; false if malformed.
bool parse_duration(std::string_view s, std::chrono::milliseconds& out);
// "65536", "64KiB", "1MiB" → bytes; false if malformed.
bool parse_size(std::string_view s, std::size_t& out);

}  // namespace todo
