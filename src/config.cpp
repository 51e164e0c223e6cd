#include "todo/config.hpp"

#include <charconv>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

namespace todo {
namespace {

using setter = std::function<std::string(config&, const std::string&)>;  // "" = ok, else the problem

struct option {
  std::string_view env;
  std::string_view fallback;  // shown in --help
  std::string_view doc;
  setter set;
};

template <class Int>
setter integer(std::int64_t lo, std::int64_t hi, std::function<Int&(config&)> field) {
  return [=](config& c, const std::string& v) -> std::string {
    std::int64_t n = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc{} || p != v.data() + v.size() || n < lo || n > hi) {
      return "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
    }
    field(c) = static_cast<Int>(n);
    return {};
  };
}

setter duration(std::function<std::chrono::milliseconds&(config&)> field, std::chrono::milliseconds lo) {
  return [=](config& c, const std::string& v) -> std::string {
    std::chrono::milliseconds d{};
    if (!parse_duration(v, d) || d < lo) {
      return "must be a duration such as 500ms, 10s, 5m (at least " + std::to_string(lo.count()) + "ms)";
    }
    field(c) = d;
    return {};
  };
}

setter size(std::size_t lo, std::size_t hi, std::function<std::size_t&(config&)> field) {
  return [=](config& c, const std::string& v) -> std::string {
    std::size_t n = 0;
    if (!parse_size(v, n) || n < lo || n > hi) {
      return "must be a size in bytes such as 65536, 64KiB or 1MiB, from " + std::to_string(lo) + " to " +
             std::to_string(hi);
    }
    field(c) = n;
    return {};
  };
}

setter boolean(std::function<bool&(config&)> field) {
  return [=](config& c, const std::string& v) -> std::string {
    if (v != "true" && v != "false") {
      return "must be true or false";
    }
    field(c) = v == "true";
    return {};
  };
}

std::string topic(const std::string& v, std::string& out) {
  // Kafka's own rule for topic names.
  if (v.empty() || v.size() > 249 || v == "." || v == "..") {
    return "must be a topic name of 1 to 249 characters";
  }
  for (char c : v) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return "may contain only letters, digits, '.', '_' and '-'";
    }
  }
  out = v;
  return {};
}

bool parse_rate(const std::string& v, double lo, double hi, double& out) {
  double d = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), d);
  if (ec != std::errc{} || p != v.data() + v.size() || !(d >= lo && d <= hi)) {
    return false;
  }
  out = d;
  return true;
}

const std::vector<option>& options() {
  static const std::vector<option> all{
      {"PORT", "8080", "HTTP port (0 picks a free port, logged at start)",
       [](config& c, const std::string& v) -> std::string {
         std::int64_t n = 0;
         auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
         if (ec != std::errc{} || p != v.data() + v.size() || n < 0 || n > 65535) {
           return "must be a port number from 0 to 65535";
         }
         c.http.port = static_cast<std::uint16_t>(n);
         return {};
       }},
      {"BIND_ADDRESS", "0.0.0.0", "address to listen on",
       [](config& c, const std::string& v) -> std::string {
         if (v.empty()) {
           return "must not be empty";
         }
         c.http.bind_address = v;
         return {};
       }},
      {"DATABASE_URL", "(required)", "PostgreSQL conninfo string or postgresql:// URI",
       [](config& c, const std::string& v) -> std::string {
         if (v.empty()) {
           return "must not be empty";
         }
         c.db.url = v;
         return {};
       }},
      // One connection is held by the Kafka relay's lock on the replica that
      // relays: with one alone, nothing else could ever run.
      {"DB_POOL_SIZE", "16", "maximum PostgreSQL connections, at least 2 (the Kafka relay keeps one)",
       integer<std::size_t>(2, 1000, [](config& c) -> std::size_t& { return c.db.pool_size; })},
      {"DB_ACQUIRE_TIMEOUT", "2s", "longest wait for a free connection before answering 503",
       duration([](config& c) -> std::chrono::milliseconds& { return c.db.acquire_timeout; }, std::chrono::milliseconds(1))},
      {"DB_CONNECT_TIMEOUT", "2s", "longest wait to open a connection",
       duration([](config& c) -> std::chrono::milliseconds& { return c.db.connect_timeout; }, std::chrono::milliseconds(1))},
      {"DB_STATEMENT_TIMEOUT", "5s", "statement_timeout of every connection",
       duration([](config& c) -> std::chrono::milliseconds& { return c.db.statement_timeout; }, std::chrono::milliseconds(1))},
      {"DB_MAX_WAITERS", "256", "callers that may wait for a connection; beyond them requests get 503 at once (0 = none wait)",
       integer<std::size_t>(0, 1'000'000, [](config& c) -> std::size_t& { return c.db.max_waiters; })},
      {"KAFKA_BROKERS", "embedded", "Kafka bootstrap servers, or embedded for the in-process broker",
       [](config& c, const std::string& v) -> std::string {
         c.kafka.brokers = v;
         return {};
       }},
      {"KAFKA_TOPIC_TASK_EVENTS", "task-events", "topic for task lifecycle events",
       [](config& c, const std::string& v) { return topic(v, c.kafka.topic_task_events); }},
      {"KAFKA_TOPIC_REMINDERS", "reminders", "topic for reminder events",
       [](config& c, const std::string& v) { return topic(v, c.kafka.topic_reminders); }},
      {"KAFKA_TOPIC_TASK_UPDATES", "task-updates", "topic for everything a client must see",
       [](config& c, const std::string& v) { return topic(v, c.kafka.topic_task_updates); }},
      {"EVENT_POLL_INTERVAL", "100ms", "how often the event log is read for commits of other replicas",
       duration([](config& c) -> std::chrono::milliseconds& { return c.kafka.poll_interval; }, std::chrono::milliseconds(1))},
      {"JWT_SECRET", "(unset)", "HS256 secret, at least 32 bytes",
       [](config& c, const std::string& v) -> std::string {
         if (v.size() < 32) {
           return "must be at least 32 bytes long";
         }
         c.auth.jwt_secret = v;
         return {};
       }},
      {"CURSOR_SECRET", "(from JWT_SECRET)", "key that signs page cursors, at least 32 bytes; same on every replica",
       [](config& c, const std::string& v) -> std::string {
         if (v.size() < 32) {
           return "must be at least 32 bytes long";
         }
         c.auth.cursor_secret = v;
         return {};
       }},
      {"JWT_PUBLIC_KEY_FILE", "(unset)", "RS256 public key, PEM file",
       [](config& c, const std::string& v) -> std::string {
         std::error_code ec;
         if (!std::filesystem::is_regular_file(v, ec)) {
           return "cannot read " + v + " (not a regular file)";
         }
         std::ifstream in(v, std::ios::binary);
         if (!in) {
           return "cannot read " + v;
         }
         std::ostringstream s;
         s << in.rdbuf();
         if (s.str().empty()) {
           return v + " is empty";
         }
         c.auth.jwt_public_key_file = v;
         c.auth.jwt_public_key_pem = s.str();
         return {};
       }},
      {"LOG_LEVEL", "info", "debug, info, warn or error",
       [](config& c, const std::string& v) -> std::string {
         return log::parse_level(v, c.log_level) ? std::string{} : "must be one of debug, info, warn, error";
       }},
      {"THREADS", "(cores)", "I/O threads",
       integer<unsigned>(1, 256, [](config& c) -> unsigned& { return c.threads; })},
      {"RATE_LIMIT", "100", "requests a second per user, sustained (0 = unlimited)",
       [](config& c, const std::string& v) -> std::string {
         return parse_rate(v, 0, 1e6, c.limits.user_rate) ? std::string{} : "must be a number from 0 to 1000000";
       }},
      {"RATE_LIMIT_BURST", "200", "requests a user may send at once before RATE_LIMIT applies",
       [](config& c, const std::string& v) -> std::string {
         return parse_rate(v, 1, 1e7, c.limits.user_burst) ? std::string{} : "must be a number from 1 to 10000000";
       }},
      {"RATE_LIMIT_IP", "1000", "requests a second per client address (IPv6: per /64), sustained (0 = unlimited)",
       [](config& c, const std::string& v) -> std::string {
         return parse_rate(v, 0, 1e6, c.limits.ip_rate) ? std::string{} : "must be a number from 0 to 1000000";
       }},
      {"RATE_LIMIT_IP_BURST", "2000", "requests one client address may send at once before RATE_LIMIT_IP applies",
       [](config& c, const std::string& v) -> std::string {
         return parse_rate(v, 1, 1e7, c.limits.ip_burst) ? std::string{} : "must be a number from 1 to 10000000";
       }},
      {"LIMITS_EXEMPT_LOOPBACK", "true",
       "per-address limits skip loopback clients (the Dapr sidecar, kubectl port-forward)",
       boolean([](config& c) -> bool& { return c.http.loopback_exempt; })},
      {"HTTP_MAX_CONNECTIONS", "20000", "open connections in all, WebSockets included; more are answered 503 and closed",
       integer<std::size_t>(1, 10'000'000, [](config& c) -> std::size_t& { return c.http.max_connections; })},
      {"HTTP_MAX_CONNECTIONS_PER_IP", "1000",
       "open connections per client address (IPv6: per /64); more are answered 429 and closed",
       integer<std::size_t>(1, 10'000'000, [](config& c) -> std::size_t& { return c.http.max_connections_per_ip; })},
      {"HTTP_MAX_BODY", "1MiB", "largest request body (then 413)",
       size(1024, 1024 * 1024 * 1024, [](config& c) -> std::size_t& { return c.http.max_body_bytes; })},
      {"HTTP_MAX_HEADER", "16KiB", "largest request line and headers (then 400)",
       size(1024, 1024 * 1024, [](config& c) -> std::size_t& { return c.http.max_header_bytes; })},
      {"WS_MAX_MESSAGE", "64KiB", "largest WebSocket message a client may send (then closed with 1009)",
       size(125, 64 * 1024 * 1024, [](config& c) -> std::size_t& { return c.websocket.max_message_bytes; })},
      {"WS_MAX_PER_USER", "20", "WebSocket connections one user may hold (then 429)",
       integer<std::size_t>(1, 100'000, [](config& c) -> std::size_t& { return c.websocket.max_per_user; })},
      {"WS_MAX_CONNECTIONS", "10000", "WebSocket connections in all (then 429)",
       integer<std::size_t>(1, 10'000'000, [](config& c) -> std::size_t& { return c.websocket.max_connections; })},
      {"WS_SEND_QUEUE", "1024", "frames queued for one connection before it is closed as a slow consumer (1008)",
       integer<std::size_t>(1, 1'000'000, [](config& c) -> std::size_t& { return c.websocket.send_queue; })},
      {"WS_PING_INTERVAL", "20s", "how often the server pings each WebSocket",
       duration([](config& c) -> std::chrono::milliseconds& { return c.websocket.ping_interval; }, std::chrono::milliseconds(10))},
      {"WS_PONG_TIMEOUT", "60s", "a WebSocket that answered no ping for this long is closed",
       duration([](config& c) -> std::chrono::milliseconds& { return c.websocket.pong_timeout; }, std::chrono::milliseconds(10))},
      {"HTTP_HEADER_TIMEOUT", "10s", "time allowed to send a request's headers",
       duration([](config& c) -> std::chrono::milliseconds& { return c.http.header_timeout; }, std::chrono::milliseconds(1))},
      {"HTTP_BODY_TIMEOUT", "30s", "time allowed to send a request's body",
       duration([](config& c) -> std::chrono::milliseconds& { return c.http.body_timeout; }, std::chrono::milliseconds(1))},
      {"HTTP_IDLE_TIMEOUT", "60s", "keep-alive connections idle longer are closed",
       duration([](config& c) -> std::chrono::milliseconds& { return c.http.idle_timeout; }, std::chrono::milliseconds(1))},
      {"WEBHOOK_ALLOW_INSECURE", "false", "local and test use only: allow http:// and loopback/private webhook targets",
       boolean([](config& c) -> bool& { return c.notify.webhook_allow_insecure; })},
      {"SMTP_URL", "(unset)",
       "reminder e-mail server: smtp://[user:pass@]host:587 (STARTTLS when offered) or smtps://host:465",
       [](config& c, const std::string& v) -> std::string {
         if (!v.empty() && !v.starts_with("smtp://") && !v.starts_with("smtps://")) {
           return "must start with smtp:// or smtps://";
         }
         c.notify.smtp_url = v;
         return {};
       }},
      {"SMTP_FROM", "todo-server@localhost", "sender address of reminder e-mails",
       [](config& c, const std::string& v) -> std::string {
         if (v.empty() || v.find('@') == std::string::npos || v.find_first_of("\r\n<> ") != std::string::npos) {
           return "must be an e-mail address such as reminders@example.com";
         }
         c.notify.smtp_from = v;
         return {};
       }},
      {"REMINDER_MAX_ATTEMPTS", "8", "delivery attempts per channel before a reminder is dead-lettered",
       integer<int>(1, 100, [](config& c) -> int& { return c.notify.max_attempts; })},
      {"REMINDER_RETRY_BASE", "2s", "first delivery retry after about this long, doubling each time, with jitter",
       duration([](config& c) -> std::chrono::milliseconds& { return c.notify.retry_base; }, std::chrono::milliseconds(10))},
      {"DAPR_HTTP_PORT", "(unset)", "the Dapr sidecar's HTTP port; unset: embedded scheduler and state store",
       [](config& c, const std::string& v) -> std::string {
         std::int64_t n = 0;
         auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
         if (v.empty()) {
           c.dapr.http_port = 0;
           return {};
         }
         if (ec != std::errc{} || p != v.data() + v.size() || n < 1 || n > 65535) {
           return "must be a port number from 1 to 65535";
         }
         c.dapr.http_port = static_cast<std::uint16_t>(n);
         return {};
       }},
      {"DAPR_STATE_STORE", "statestore", "name of the Dapr state.postgresql component",
       [](config& c, const std::string& v) -> std::string {
         if (v.empty() || v.find_first_of("/?#% ") != std::string::npos) {
           return "must be a component name";
         }
         c.dapr.state_store = v;
         return {};
       }},
      {"DAPR_API_TOKEN", "(unset)", "token sent to the sidecar (dapr-api-token)",
       [](config& c, const std::string& v) -> std::string {
         c.dapr.api_token = v;
         return {};
       }},
      {"APP_API_TOKEN", "(unset)", "token the sidecar must send on /job/* (dapr-api-token)",
       [](config& c, const std::string& v) -> std::string {
         c.dapr.app_api_token = v;
         return {};
       }},
      {"REMINDER_RECONCILE_INTERVAL", "30s",
       "how often reminders past due and not fired, and unsettled deliveries, are looked for",
       duration([](config& c) -> std::chrono::milliseconds& { return c.dapr.reconcile_interval; }, std::chrono::milliseconds(100))},
      {"DRAIN_TIMEOUT", "10s", "on SIGTERM, longest wait for in-flight requests",
       duration([](config& c) -> std::chrono::milliseconds& { return c.http.drain_timeout; }, std::chrono::milliseconds(0))},
  };
  return all;
}

std::string flag_for(std::string_view env) {
  std::string f = "--";
  for (char c : env) {
    f.push_back(c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return f;
}

}  // namespace

bool parse_duration(std::string_view s, std::chrono::milliseconds& out) {
  if (s.empty()) {
    return false;
  }
  std::int64_t total = 0;
  while (!s.empty()) {
    std::int64_t n = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc{} || p == s.data() || n < 0) {
      return false;
    }
    s.remove_prefix(static_cast<std::size_t>(p - s.data()));
    std::int64_t unit = 0;
    if (s.starts_with("ms")) {
      unit = 1;
      s.remove_prefix(2);
    } else if (s.starts_with("s")) {
      unit = 1000;
      s.remove_prefix(1);
    } else if (s.starts_with("m")) {
      unit = 60'000;
      s.remove_prefix(1);
    } else if (s.starts_with("h")) {
      unit = 3'600'000;
      s.remove_prefix(1);
    } else if (s.starts_with("d")) {
      unit = 86'400'000;
      s.remove_prefix(1);
    } else {
      return false;
    }
    if (n > (INT64_MAX / unit) - total) {
      return false;
    }
    total += n * unit;
  }
  out = std::chrono::milliseconds(total);
  return true;
}

bool parse_size(std::string_view s, std::size_t& out) {
  std::uint64_t n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc{} || p == s.data()) {
    return false;
  }
  std::string_view unit(p, static_cast<std::size_t>(s.data() + s.size() - p));
  std::uint64_t scale = 0;
  if (unit.empty() || unit == "B") {
    scale = 1;
  } else if (unit == "KiB") {
    scale = 1024;
  } else if (unit == "MiB") {
    scale = 1024 * 1024;
  } else if (unit == "GiB") {
    scale = 1024 * 1024 * 1024;
  } else {
    return false;
  }
  if (n > UINT64_MAX / scale || n * scale > SIZE_MAX) {
    return false;
  }
  out = static_cast<std::size_t>(n * scale);
  return true;
}

config_result load_config(const environment& env, std::span<const std::string> args) {
  config_result out;
  std::map<std::string, std::string, std::less<>> values;
  for (const auto& o : options()) {
    if (auto it = env.find(o.env); it != env.end()) {
      values[std::string(o.env)] = it->second;
    }
  }
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    auto eq = a.find('=');
    std::string flag = a.substr(0, eq);
    const option* match = nullptr;
    for (const auto& o : options()) {
      if (flag_for(o.env) == flag) {
        match = &o;
      }
    }
    if (match == nullptr) {
      out.errors.push_back(a + ": unknown flag (see --help)");
      continue;
    }
    if (eq != std::string::npos) {
      values[std::string(match->env)] = a.substr(eq + 1);
    } else if (i + 1 < args.size()) {
      values[std::string(match->env)] = args[++i];
    } else {
      out.errors.push_back(flag + ": needs a value");
    }
  }
  for (const auto& o : options()) {
    if (auto it = values.find(o.env); it != values.end()) {
      if (auto problem = o.set(out.cfg, it->second); !problem.empty()) {
        out.errors.push_back(std::string(o.env) + ": " + problem);
      }
    }
  }
  if (out.cfg.db.url.empty()) {
    out.errors.push_back("DATABASE_URL: is required");
  }
  if (out.cfg.auth.jwt_secret.empty() && out.cfg.auth.jwt_public_key_pem.empty()) {
    out.errors.push_back("JWT_SECRET: JWT_SECRET or JWT_PUBLIC_KEY_FILE is required");
  }
  if (out.cfg.auth.cursor_secret.empty() && out.cfg.auth.jwt_secret.empty() &&
      !out.cfg.auth.jwt_public_key_pem.empty()) {
    // A public key is no secret: cursors signed with it could be forged.
    out.errors.push_back("CURSOR_SECRET: is required when JWT_SECRET is unset");
  }
  if (out.cfg.threads == 0) {
    out.cfg.threads = std::max(1u, std::thread::hardware_concurrency());
  }
  return out;
}

std::string config_help() {
  std::string out;
  for (const auto& o : options()) {
    std::string line = "  " + flag_for(o.env) + ", " + std::string(o.env);
    if (line.size() < 46) {
      line.resize(46, ' ');
    } else {
      line += "  ";
    }
    out += line + std::string(o.doc) + " [" + std::string(o.fallback) + "]\n";
  }
  return out;
}

}  // namespace todo
