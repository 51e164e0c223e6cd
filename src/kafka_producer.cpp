// The idempotent producer. librdkafka's threads never call into our code:
// every callback (delivery reports, errors, logs) is an op on the handle's
// main queue, and librdkafka only writes to an eventfd when that queue
// becomes non-empty. Asio watches the eventfd on the producer's strand and
// serves the queue there with rd_kafka_poll(rk, 0), which never blocks.
#include "todo/kafka.hpp"
#include "todo/log.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include <librdkafka/rdkafka.h>
#include <simdjson.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace todo::kafka {
namespace {

namespace asio = boost::asio;

template <class T, void (*F)(T*)>
struct c_free {
  void operator()(T* p) const noexcept { F(p); }
};
using conf_ptr = std::unique_ptr<rd_kafka_conf_t, c_free<rd_kafka_conf_t, rd_kafka_conf_destroy>>;
using handle_ptr = std::unique_ptr<rd_kafka_t, c_free<rd_kafka_t, rd_kafka_destroy>>;
using queue_ptr = std::unique_ptr<rd_kafka_queue_t, c_free<rd_kafka_queue_t, rd_kafka_queue_destroy>>;
using headers_ptr = std::unique_ptr<rd_kafka_headers_t, c_free<rd_kafka_headers_t, rd_kafka_headers_destroy>>;

// The token rides in the message's opaque pointer.
static_assert(sizeof(void*) >= sizeof(std::uint64_t));

// A turn on the strand serves at most this many polls, so a busy producer
// does not starve the other work on the io_context.
constexpr int max_polls_per_turn = 64;

log::limiter down_log_limit(1);
log::limiter error_log_limit(5);
log::limiter send_log_limit(5);
log::limiter librdkafka_log_limit(5);

}  // namespace

// Owned by `strand_`: the descriptor, and every callback, which runs inside
// rd_kafka_poll on that strand. `up_` and `fatal_` are atomics because
// brokers_up() and send() read them from any thread; send() and in_flight()
// use only librdkafka's thread-safe calls. close() runs after
// io_context::run() has returned, so nothing runs on the strand then.
struct producer::impl : std::enable_shared_from_this<impl> {
  impl(asio::io_context& io, std::function<void(delivery)> cb)
      : strand_(asio::make_strand(io)), on_delivery_(std::move(cb)), wake_(strand_) {}
  ~impl() { close(); }

  void start(const producer_config& cfg);
  void arm();
  void drain();
  void close();

  static void on_message(rd_kafka_t* rk, const rd_kafka_message_t* m, void* opaque);
  static void on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque);
  static int on_stats(rd_kafka_t* rk, char* json, size_t len, void* opaque);
  static void on_log(const rd_kafka_t* rk, int level, const char* facility, const char* text);

  asio::strand<asio::io_context::executor_type> strand_;
  std::function<void(delivery)> on_delivery_;
  handle_ptr rk_;
  queue_ptr main_queue_;  // a reference on rk_: released before rd_kafka_destroy, which waits for it
  int wake_fd_ = -1;      // owned here; wake_ only borrows it
  asio::posix::stream_descriptor wake_;
  std::atomic<bool> up_{true};
  std::atomic<bool> fatal_{false};
};

namespace {

void set(rd_kafka_conf_t* conf, const std::string& name, const std::string& value) {
  char err[512];
  if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
    // The value stays out of the message: it may be a password.
    throw std::runtime_error("kafka property " + name + ": " + err);
  }
}

}  // namespace

void producer::impl::start(const producer_config& cfg) {
  conf_ptr conf(rd_kafka_conf_new());
  set(conf.get(), "bootstrap.servers", cfg.brokers);
  set(conf.get(), "enable.idempotence", "true");
  set(conf.get(), "acks", "all");
  // 0 is "no limit": a record waits out any outage rather than failing and
  // letting a later record of the same key overtake it on resend.
  set(conf.get(), "message.timeout.ms", "0");
  set(conf.get(), "linger.ms", "5");
  // Small produce requests behind Nagle's algorithm wait for the peer's
  // delayed ACK (tens of milliseconds on loopback).
  set(conf.get(), "socket.nagle.disable", "true");
  // Logs become ops on the main queue too (see rd_kafka_set_log_queue below).
  set(conf.get(), "log.queue", "true");
  for (const auto& [name, value] : cfg.extra) {
    set(conf.get(), name, value);
  }
  rd_kafka_conf_set_dr_msg_cb(conf.get(), &impl::on_message);
  rd_kafka_conf_set_error_cb(conf.get(), &impl::on_error);
  // Errors say when brokers go away, nothing says when they are back: the
  // statistics (broker states, every second) do.
  set(conf.get(), "statistics.interval.ms", "1000");
  rd_kafka_conf_set_stats_cb(conf.get(), &impl::on_stats);
  rd_kafka_conf_set_log_cb(conf.get(), &impl::on_log);
  rd_kafka_conf_set_opaque(conf.get(), this);

  char err[512];
  rk_.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), err, sizeof err));
  if (!rk_) {
    // rd_kafka_new failed: the conf is still ours, and conf_ptr frees it.
    throw std::runtime_error(std::string("kafka producer: ") + err);
  }
  // rd_kafka_new succeeded: the handle owns the conf now.
  (void)conf.release();

  main_queue_.reset(rd_kafka_queue_get_main(rk_.get()));
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    throw std::runtime_error(std::string("kafka producer: eventfd: ") + std::strerror(errno));
  }
  wake_.assign(wake_fd_);
  // An eventfd takes 8-byte writes; librdkafka keeps its own copy of this.
  const std::uint64_t one = 1;
  rd_kafka_queue_io_event_enable(main_queue_.get(), wake_fd_, &one, sizeof one);
  if (auto e = rd_kafka_set_log_queue(rk_.get(), nullptr); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error(std::string("kafka producer: log queue: ") + rd_kafka_err2str(e));
  }
  log::info("kafka", "producer started", {{"brokers", cfg.brokers}});

  // librdkafka writes the fd only when the queue goes from empty to
  // non-empty: ops queued by its threads before io_event_enable would
  // otherwise never wake us, so serve the queue once up front.
  asio::post(strand_, [self = shared_from_this()] {
    if (self->rk_) {
      self->drain();
    }
  });
  arm();
}

void producer::impl::arm() {
  wake_.async_wait(asio::posix::descriptor_base::wait_read, [self = shared_from_this()](boost::system::error_code ec) {
    // After close() (operation_aborted, or a wake-up that completed just
    // before run() returned) the handle is gone.
    if (ec || !self->rk_) {
      return;
    }
    self->drain();
    self->arm();
  });
}

void producer::impl::drain() {
  // Reset the eventfd before serving: anything queued from here on finds
  // the queue empty again and writes the fd again, so nothing is missed.
  std::uint64_t count = 0;
  if (::read(wake_fd_, &count, sizeof count) < 0 && errno != EAGAIN) {
    log::error("kafka", "eventfd read failed", {{"error", std::strerror(errno)}});
  }
  for (int i = 0; i < max_polls_per_turn; ++i) {
    if (rd_kafka_poll(rk_.get(), 0) == 0) {
      return;
    }
  }
  // Still busy. The queue is not empty, so librdkafka will not write the fd:
  // come back after the rest of the io_context has had a turn.
  asio::post(strand_, [self = shared_from_this()] {
    if (self->rk_) {
      self->drain();
    }
  });
}

void producer::impl::close() {
  if (!rk_ && wake_fd_ < 0) {
    return;
  }
  assert(!strand_.running_in_this_thread());
  if (main_queue_) {
    // librdkafka must stop writing to the fd before its number can be reused.
    rd_kafka_queue_io_event_enable(main_queue_.get(), -1, nullptr, 0);
    main_queue_.reset();
  }
  if (wake_fd_ >= 0) {
    boost::system::error_code ec;
    wake_.cancel(ec);
    (void)wake_.release();  // the fd is ours to close, not the descriptor's
    ::close(wake_fd_);
    wake_fd_ = -1;
  }
  if (rk_) {
    // The owner flushed what it wanted delivered; what is left is abandoned
    // here and resent from the outbox by the next producer. Purging keeps
    // rd_kafka_destroy from waiting on records a dead broker will not ack.
    auto e =
        rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT | RD_KAFKA_PURGE_F_NON_BLOCKING);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      log::warn("kafka", "purge failed", {{"error", rd_kafka_err2str(e)}});
    }
    rk_.reset();
  }
}

void producer::impl::on_message(rd_kafka_t* rk, const rd_kafka_message_t* m, void* opaque) {
  auto* self = static_cast<impl*>(opaque);
  delivery d;
  d.token = reinterpret_cast<std::uintptr_t>(m->_private);
  d.ok = m->err == RD_KAFKA_RESP_ERR_NO_ERROR;
  if (d.ok) {
    if (!self->up_.exchange(true)) {
      log::info("kafka", "brokers reachable again", {});
    }
  } else {
    d.error = rd_kafka_err2str(m->err);
    d.fatal = self->fatal_.load() || rd_kafka_fatal_error(rk, nullptr, 0) != RD_KAFKA_RESP_ERR_NO_ERROR;
  }
  // An exception must not unwind through librdkafka's C frames.
  try {
    self->on_delivery_(std::move(d));
  } catch (const std::exception& e) {
    log::error("kafka", "delivery handler threw", {{"error", e.what()}});
  }
}

void producer::impl::on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
  auto* self = static_cast<impl*>(opaque);
  auto code = static_cast<rd_kafka_resp_err_t>(err);
  if (code == RD_KAFKA_RESP_ERR__FATAL) {
    char text[512];
    auto cause = rd_kafka_fatal_error(rk, text, sizeof text);
    self->fatal_.store(true);
    log::error("kafka", "producer failed fatally", {{"code", rd_kafka_err2name(cause)}, {"error", text}});
    return;
  }
  if (code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || code == RD_KAFKA_RESP_ERR__TRANSPORT) {
    self->up_.store(false);
    if (auto skipped = down_log_limit.admit(); skipped >= 0) {
      log::warn("kafka", "brokers unreachable",
                {{"code", rd_kafka_err2name(code)}, {"error", reason}, {"suppressed", skipped}});
    }
    return;
  }
  if (auto skipped = error_log_limit.admit(); skipped >= 0) {
    log::warn("kafka", "producer error",
              {{"code", rd_kafka_err2name(code)}, {"error", reason}, {"suppressed", skipped}});
  }
}

int producer::impl::on_stats(rd_kafka_t*, char* json, size_t len, void* opaque) {
  auto* self = static_cast<impl*>(opaque);
  thread_local simdjson::dom::parser parser;
  auto doc = parser.parse(json, len, true);
  simdjson::dom::object brokers;
  if (doc.error() != simdjson::SUCCESS || doc["brokers"].get(brokers) != simdjson::SUCCESS) {
    return 0;
  }
  bool any_up = false;
  for (auto b : brokers) {
    std::int64_t node = -1;
    std::string_view state;
    // Bootstrap entries (nodeid -1) are not brokers of the cluster.
    if (b.value["nodeid"].get(node) == simdjson::SUCCESS && node >= 0 &&
        b.value["state"].get(state) == simdjson::SUCCESS && state == "UP") {
      any_up = true;
    }
  }
  self->up_.store(any_up);
  return 0;  // librdkafka frees the JSON
}

void producer::impl::on_log(const rd_kafka_t*, int level, const char* facility, const char* text) {
  // syslog levels: 4 (warning) and worse are worth seeing, the rest is debug.
  if (level > 4) {
    log::debug("kafka", "librdkafka", {{"facility", facility}, {"text", text}});
    return;
  }
  if (auto skipped = librdkafka_log_limit.admit(); skipped >= 0) {
    log::warn("kafka", "librdkafka", {{"facility", facility}, {"text", text}, {"suppressed", skipped}});
  }
}

producer::producer(boost::asio::io_context& io, producer_config cfg, std::function<void(delivery)> on_delivery)
    : impl_(std::make_shared<impl>(io, std::move(on_delivery))) {
  impl_->start(cfg);
}

// The owner destroys the producer after io_context::run() has returned: the
// strand must be idle, and rd_kafka_destroy blocks.
producer::~producer() { impl_->close(); }

producer::enqueue producer::send(const record& r) {
  headers_ptr headers(rd_kafka_headers_new(r.headers.size()));
  for (const auto& [name, value] : r.headers) {
    auto e = rd_kafka_header_add(headers.get(), name.data(), static_cast<ssize_t>(name.size()), value.data(),
                                 static_cast<ssize_t>(value.size()));
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      log::error("kafka", "header refused", {{"error", rd_kafka_err2str(e)}});
      return enqueue::failed;
    }
  }
  // MSG_F_COPY: librdkafka copies the value, so the record may go away now.
  auto e = rd_kafka_producev(impl_->rk_.get(), RD_KAFKA_V_TOPIC(r.topic.c_str()),
                             RD_KAFKA_V_KEY(r.key.data(), r.key.size()),
                             RD_KAFKA_V_VALUE(const_cast<char*>(r.value.data()), r.value.size()),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers.get()),
                             RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(static_cast<std::uintptr_t>(r.token))),
                             RD_KAFKA_V_END);
  if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
    // The accepted record owns its headers now.
    (void)headers.release();
    return enqueue::queued;
  }
  if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
    return enqueue::queue_full;
  }
  if (auto skipped = send_log_limit.admit(); skipped >= 0) {
    log::error("kafka", "produce refused",
               {{"code", rd_kafka_err2name(e)}, {"topic", r.topic}, {"suppressed", skipped}});
  }
  return enqueue::failed;
}

std::size_t producer::in_flight() const {
  return static_cast<std::size_t>(rd_kafka_outq_len(impl_->rk_.get()));
}

bool producer::brokers_up() const { return impl_->up_.load(); }

// rd_kafka_flush serves the queue itself, so on_delivery runs on this thread
// here: that is why run() must have returned (the strand is idle).
void producer::flush(std::chrono::milliseconds timeout) {
  auto e = rd_kafka_flush(impl_->rk_.get(), static_cast<int>(timeout.count()));
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    log::warn("kafka", "flush incomplete", {{"code", rd_kafka_err2name(e)}, {"in_flight", in_flight()}});
  }
}

}  // namespace todo::kafka
