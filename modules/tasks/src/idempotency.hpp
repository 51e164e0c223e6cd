#pragma once
// Idempotency-Key: the first successful answer to a key is stored in the
// same transaction as the change; the same key and request replay it
// (Idempotent-Replayed: true), another request with the key is a 409.
// Keys are per user and live 24 hours.
#include "todo/db.hpp"
#include "todo/http.hpp"
#include "todo/router.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <functional>
#include <memory>
#include <optional>

namespace todo::tasks {

struct idempotency_key {
  std::string user;
  std::string key;
  std::string fingerprint;  // SHA-256 of method, path and body
};

// The record of `answer`, to run in the same transaction as the change.
std::vector<db::query> record(const idempotency_key& k, const http::response& answer);

// Work that may carry an idempotency record. Returning the error
// db::errc::unique_violation means another request with the same key won.
using idempotent_work = std::function<boost::asio::awaitable<boost::system::result<http::response>>(
    std::optional<idempotency_key>)>;

// Runs `work` under the request's Idempotency-Key, if it has one.
boost::asio::awaitable<http::response> run_idempotent(std::shared_ptr<db::pool> db, const request_context& ctx,
                                                      idempotent_work work);

// Deletes keys older than 24 hours.
boost::asio::awaitable<boost::system::result<std::int64_t>> prune_idempotency_keys(db::pool& db);

}  // namespace todo::tasks
