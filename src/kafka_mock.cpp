// librdkafka's mock cluster: Kafka-protocol brokers in memory, on loopback
// ports, for local runs and tests. `todo-server broker` runs one alone.
#include "todo/kafka.hpp"
#include "todo/log.hpp"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <iostream>
#include <optional>
#include <stdexcept>

namespace todo::kafka {
namespace {

template <class T, void (*F)(T*)>
struct c_free {
  void operator()(T* p) const noexcept { F(p); }
};
using conf_ptr = std::unique_ptr<rd_kafka_conf_t, c_free<rd_kafka_conf_t, rd_kafka_conf_destroy>>;
using handle_ptr = std::unique_ptr<rd_kafka_t, c_free<rd_kafka_t, rd_kafka_destroy>>;
using cluster_ptr =
    std::unique_ptr<rd_kafka_mock_cluster_t, c_free<rd_kafka_mock_cluster_t, rd_kafka_mock_cluster_destroy>>;

// The host handle is never polled, so its logs arrive on librdkafka's
// threads. log::write is one write(2) per line and safe there; nothing else
// happens in this callback.
void on_host_log(const rd_kafka_t*, int level, const char* facility, const char* text) {
  if (level <= 3) {
    log::warn("broker", "librdkafka", {{"facility", facility}, {"text", text}});
  } else {
    log::debug("broker", "librdkafka", {{"facility", facility}, {"text", text}});
  }
}

}  // namespace

struct mock_cluster::impl {
  handle_ptr host;      // the rd_kafka_t the cluster lives on
  cluster_ptr cluster;  // declared after host so that it is destroyed first
  int brokers = 0;
};

mock_cluster::mock_cluster(int brokers, const std::vector<topic_spec>& topics) : impl_(std::make_unique<impl>()) {
  if (brokers < 1) {
    throw std::invalid_argument("kafka mock: brokers must be at least 1");
  }
  conf_ptr conf(rd_kafka_conf_new());
  rd_kafka_conf_set_log_cb(conf.get(), &on_host_log);
  char err[512];
  handle_ptr host(rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), err, sizeof err));
  if (!host) {
    // rd_kafka_new failed: the conf is still ours, and conf_ptr frees it.
    throw std::runtime_error(std::string("kafka mock: ") + err);
  }
  // rd_kafka_new succeeded: the handle owns the conf now.
  (void)conf.release();

  cluster_ptr cluster(rd_kafka_mock_cluster_new(host.get(), brokers));
  if (!cluster) {
    throw std::runtime_error("kafka mock: cluster not created");
  }
  const int replication = std::min(brokers, 3);
  for (const auto& t : topics) {
    auto e = rd_kafka_mock_topic_create(cluster.get(), t.name.c_str(), t.partitions, replication);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw std::runtime_error("kafka mock: topic " + t.name + ": " + rd_kafka_err2str(e));
    }
  }
  impl_->host = std::move(host);
  impl_->cluster = std::move(cluster);
  impl_->brokers = brokers;
}

mock_cluster::~mock_cluster() {
  // The cluster's threads use the host handle: cluster first, then the host.
  impl_->cluster.reset();
  impl_->host.reset();
}

std::string mock_cluster::bootstrap() const { return rd_kafka_mock_cluster_bootstraps(impl_->cluster.get()); }

int mock_cluster::brokers() const { return impl_->brokers; }

void mock_cluster::set_broker_up(int broker_id, bool up) {
  if (broker_id < 1 || broker_id > impl_->brokers) {
    throw std::invalid_argument("kafka mock: no broker " + std::to_string(broker_id));
  }
  auto e = up ? rd_kafka_mock_broker_set_up(impl_->cluster.get(), broker_id)
              : rd_kafka_mock_broker_set_down(impl_->cluster.get(), broker_id);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error("kafka mock: broker " + std::to_string(broker_id) + ": " + rd_kafka_err2str(e));
  }
}

namespace {

struct broker_options {
  int brokers = 1;
  std::string task_events = "task-events";
  std::string reminders = "reminders";
  std::string task_updates = "task-updates";
  bool control = false;
};

std::optional<int> parse_int(std::string_view s) {
  int v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size()) {
    return std::nullopt;
  }
  return v;
}

// Returns the options, or nullopt after saying on stderr what was wrong.
std::optional<broker_options> parse_flags(const std::vector<std::string>& args) {
  broker_options o;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& flag = args[i];
    if (flag == "--control") {
      o.control = true;
      continue;
    }
    std::string* target = nullptr;
    if (flag == "--topic-task-events") {
      target = &o.task_events;
    } else if (flag == "--topic-reminders") {
      target = &o.reminders;
    } else if (flag == "--topic-task-updates") {
      target = &o.task_updates;
    } else if (flag != "--brokers") {
      std::cerr << "broker: unknown flag " << flag << "\n";
      return std::nullopt;
    }
    if (i + 1 >= args.size() || args[i + 1].empty()) {
      std::cerr << "broker: " << flag << " needs a value\n";
      return std::nullopt;
    }
    const std::string& value = args[++i];
    if (target != nullptr) {
      *target = value;
      continue;
    }
    auto n = parse_int(value);
    if (!n || *n < 1 || *n > 16) {
      std::cerr << "broker: --brokers must be a number from 1 to 16, not " << value << "\n";
      return std::nullopt;
    }
    o.brokers = *n;
  }
  return o;
}

void write_stdout(std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::write(STDOUT_FILENO, s.data(), s.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return;
    }
    s.remove_prefix(static_cast<std::size_t>(n));
  }
}

// "down N" / "up N" → "ok", anything else → "error <reason>".
std::string apply_command(mock_cluster& cluster, std::string_view line) {
  bool up = false;
  if (line.starts_with("down ")) {
    line.remove_prefix(5);
  } else if (line.starts_with("up ")) {
    up = true;
    line.remove_prefix(3);
  } else {
    return "error unknown command";
  }
  auto id = parse_int(line);
  if (!id) {
    return "error bad broker id";
  }
  try {
    cluster.set_broker_up(*id, up);
  } catch (const std::exception& e) {
    return std::string("error ") + e.what();
  }
  return "ok";
}

// Serves stdin commands (with --control) until SIGINT/SIGTERM arrives on
// `sig_fd`, or stdin closes: a controller that went away must not leave an
// orphan broker holding its port.
std::string_view serve(mock_cluster& cluster, int sig_fd, bool control) {
  std::string pending;
  for (;;) {
    pollfd fds[2] = {{sig_fd, POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
    int n = ::poll(fds, control ? 2 : 1, -1);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      log::error("broker", "poll failed", {{"error", std::strerror(errno)}});
      return "poll failed";
    }
    if (fds[0].revents != 0) {
      signalfd_siginfo info{};
      if (::read(sig_fd, &info, sizeof info) < 0 && errno != EAGAIN) {
        log::error("broker", "signalfd read failed", {{"error", std::strerror(errno)}});
      }
      return info.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM";
    }
    if (control && fds[1].revents != 0) {
      char buf[512];
      ssize_t got = ::read(STDIN_FILENO, buf, sizeof buf);
      if (got < 0 && errno == EINTR) {
        continue;
      }
      if (got <= 0) {
        return "stdin closed";
      }
      pending.append(buf, static_cast<std::size_t>(got));
      for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
        std::string line = pending.substr(0, nl);
        pending.erase(0, nl + 1);
        if (!line.empty() && line.back() == '\r') {
          line.pop_back();
        }
        if (!line.empty()) {
          write_stdout(apply_command(cluster, line) + "\n");
        }
      }
    }
  }
}

}  // namespace

int run_broker_command(const std::vector<std::string>& args) {
  auto opts = parse_flags(args);
  if (!opts) {
    return 2;
  }
  // Blocked before the cluster starts its threads, which inherit the mask:
  // the signals then wait for signalfd instead of killing the process.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigset_t previous;
  if (int e = pthread_sigmask(SIG_BLOCK, &stop_signals, &previous); e != 0) {
    std::cerr << "broker: pthread_sigmask: " << std::strerror(e) << "\n";
    return 1;
  }
  int sig_fd = ::signalfd(-1, &stop_signals, SFD_CLOEXEC);
  if (sig_fd < 0) {
    std::cerr << "broker: signalfd: " << std::strerror(errno) << "\n";
    return 1;
  }
  int status = 0;
  try {
    mock_cluster cluster(opts->brokers, {{opts->task_events, 3}, {opts->reminders, 1}, {opts->task_updates, 3}});
    const std::string bootstrap = cluster.bootstrap();
    log::info("broker", "broker ready",
              {{"bootstrap", bootstrap},
               {"brokers", opts->brokers},
               {"topic_task_events", opts->task_events},
               {"topic_reminders", opts->reminders},
               {"topic_task_updates", opts->task_updates}});
    auto reason = serve(cluster, sig_fd, opts->control);
    log::info("broker", "broker stopping", {{"reason", reason}});
  } catch (const std::exception& e) {
    std::cerr << "broker: " << e.what() << "\n";
    status = 1;
  }
  ::close(sig_fd);
  (void)pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return status;
}

}  // namespace todo::kafka
