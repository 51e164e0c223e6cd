#include "todo/state_store.hpp"

#include "todo/dapr.hpp"
#include "todo/db.hpp"
#include "todo/json.hpp"
#include "todo/json_parse.hpp"
#include "todo/log.hpp"
#include "todo/uuid.hpp"

namespace todo {

namespace {

template <class T>
using asio_result = boost::asio::awaitable<boost::system::result<T>>;

// The key prefix a sidecar with app-id todo-server and the default
// keyPrefix (appid) puts on every key, so both stores share rows.
constexpr std::string_view key_prefix = "todo-server||";

// The statements of Dapr's state.postgresql v2 component. Values are bytea
// holding JSON text; convert_to/convert_from keep a backslash in the JSON
// from being read as a bytea escape.
const db::statement get_stmt{
    "state_get",
    "SELECT convert_from(value, 'UTF8'), etag::text FROM state"
    " WHERE key = $1 AND (expires_at IS NULL OR expires_at >= now())"};
const db::statement upsert_stmt{
    "state_upsert",
    "INSERT INTO state (key, value, etag, expires_at) VALUES ($1, convert_to($2, 'UTF8'), gen_random_uuid(), NULL)"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = now(), etag = gen_random_uuid(),"
    " expires_at = NULL"};
// As the component does, a write without a TTL clears expires_at.
const db::statement update_stmt{
    "state_update_etag",
    "UPDATE state SET value = convert_to($2, 'UTF8'), updated_at = now(), etag = gen_random_uuid(), expires_at = NULL"
    " WHERE key = $1 AND etag = $3::uuid AND (expires_at IS NULL OR expires_at >= now())"};
const db::statement delete_stmt{"state_delete", "DELETE FROM state WHERE key = $1"};
const db::statement delete_etag_stmt{"state_delete_etag", "DELETE FROM state WHERE key = $1 AND etag = $2::uuid"};

// Values go into the store verbatim: one that is not JSON would break every
// reader through the sidecar.
bool valid_json(std::string_view v) { return json::parse_body(v).error.empty(); }

// daprd answers 400 to a key holding its separator.
bool valid_key(std::string_view k) { return !k.empty() && k.find("||") == std::string_view::npos; }

class postgres_store final : public state_store {
 public:
  explicit postgres_store(std::shared_ptr<db::pool> db) : db_(std::move(db)) {}

  asio_result<std::optional<state_item>> get(std::string key) override {
    if (!valid_key(key)) {
      co_return dapr::errc::rejected;
    }
    db::query q{&get_stmt, {std::string(key_prefix) + key}};
    auto r = co_await db_->execute_one(std::move(q));
    if (!r) {
      co_return r.error();
    }
    if (r->size() == 0) {
      co_return std::optional<state_item>{};
    }
    co_return state_item{std::string(r->text(0, 0)), std::string(r->text(0, 1))};
  }

  asio_result<void> save(std::string key, std::string value, std::string etag) override {
    if (!valid_key(key) || !valid_json(value)) {
      co_return dapr::errc::rejected;
    }
    db::query q;
    if (etag.empty()) {
      q = {&upsert_stmt, {std::string(key_prefix) + key, std::move(value)}};
    } else {
      // No row carries an ETag that is not a UUID.
      auto normalized = uuid::normalize(etag);
      if (!normalized) {
        co_return dapr::errc::conflict;
      }
      q = {&update_stmt, {std::string(key_prefix) + key, std::move(value), std::move(*normalized)}};
    }
    bool guarded = !etag.empty();
    auto r = co_await db_->execute_one(std::move(q));
    if (!r) {
      co_return r.error();
    }
    if (guarded && r->affected() == 0) {
      co_return dapr::errc::conflict;
    }
    co_return boost::system::result<void>{};
  }

  asio_result<void> remove(std::string key, std::string etag) override {
    if (!valid_key(key)) {
      co_return dapr::errc::rejected;
    }
    db::query q;
    if (etag.empty()) {
      q = {&delete_stmt, {std::string(key_prefix) + key}};
    } else {
      auto normalized = uuid::normalize(etag);
      if (!normalized) {
        co_return dapr::errc::conflict;
      }
      q = {&delete_etag_stmt, {std::string(key_prefix) + key, std::move(*normalized)}};
    }
    bool guarded = !etag.empty();
    auto r = co_await db_->execute_one(std::move(q));
    if (!r) {
      co_return r.error();
    }
    if (guarded && r->affected() == 0) {
      co_return dapr::errc::conflict;
    }
    co_return boost::system::result<void>{};
  }

  const char* kind() const override { return "postgres"; }

 private:
  std::shared_ptr<db::pool> db_;
};

// RFC 3986 path segment: everything but the unreserved characters escaped.
std::string escape_segment(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                      c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 0xF];
    }
  }
  return out;
}

// The answer to a write: 204 done, 409 an ETag mismatch, anything else a
// refusal worth a log line.
boost::system::result<void> write_outcome(const dapr::reply& r, std::string_view what) {
  if (r.status == 204) {
    return {};
  }
  if (r.status == 409) {
    return dapr::errc::conflict;
  }
  log::warn("state", "sidecar refused a state call", {{"op", what}, {"status", r.status}});
  return dapr::errc::rejected;
}

class dapr_store final : public state_store {
 public:
  dapr_store(std::shared_ptr<dapr::client> c, std::string store)
      : client_(std::move(c)), base_("/v1.0/state/" + escape_segment(store)) {}

  asio_result<std::optional<state_item>> get(std::string key) override {
    if (!valid_key(key)) {
      co_return dapr::errc::rejected;
    }
    auto sent = client_->call("GET", base_ + "/" + escape_segment(key), {});
    auto r = co_await std::move(sent);
    if (!r) {
      co_return r.error();
    }
    if (r->status == 204) {
      co_return std::optional<state_item>{};
    }
    if (r->status != 200) {
      log::warn("state", "sidecar refused a state call", {{"op", "get"}, {"status", r->status}});
      co_return dapr::errc::rejected;
    }
    co_return state_item{std::move(r->body), std::move(r->etag)};
  }

  asio_result<void> save(std::string key, std::string value, std::string etag) override {
    if (!valid_key(key) || !valid_json(value)) {
      co_return dapr::errc::rejected;
    }
    json::writer w;
    w.begin_array().begin_object();
    w.key("key").value(key);
    w.key("value").raw(value);
    if (!etag.empty()) {
      w.key("etag").value(etag);
      w.key("options").begin_object().key("concurrency").value("first-write").end_object();
    }
    w.end_object().end_array();
    auto sent = client_->call("POST", base_, w.take());
    auto r = co_await std::move(sent);
    if (!r) {
      co_return r.error();
    }
    co_return write_outcome(*r, "save");
  }

  asio_result<void> remove(std::string key, std::string etag) override {
    if (!valid_key(key)) {
      co_return dapr::errc::rejected;
    }
    // daprd checks the ETag whenever If-Match is present, even empty.
    std::vector<std::pair<std::string, std::string>> headers;
    if (!etag.empty()) {
      headers.emplace_back("If-Match", std::move(etag));
    }
    auto sent = client_->call("DELETE", base_ + "/" + escape_segment(key), {}, std::move(headers));
    auto r = co_await std::move(sent);
    if (!r) {
      co_return r.error();
    }
    co_return write_outcome(*r, "remove");
  }

  const char* kind() const override { return "dapr"; }

 private:
  std::shared_ptr<dapr::client> client_;
  std::string base_;
};

}  // namespace

std::shared_ptr<state_store> make_postgres_state_store(std::shared_ptr<db::pool> db) {
  return std::make_shared<postgres_store>(std::move(db));
}

std::shared_ptr<state_store> make_dapr_state_store(std::shared_ptr<dapr::client> c, std::string store) {
  return std::make_shared<dapr_store>(std::move(c), std::move(store));
}

}  // namespace todo
