#include "idempotency.hpp"

#include "todo/problem.hpp"

#include <openssl/evp.h>

namespace todo::tasks {
namespace {

const db::statement lookup_stmt{
    "idempotency_lookup",
    "SELECT fingerprint, status, headers, body FROM idempotency_keys"
    " WHERE user_id = $1 AND key = $2 AND created_at > now() - interval '24 hours'"};
const db::statement expire_stmt{
    "idempotency_expire",
    "DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND created_at <= now() - interval '24 hours'"};
const db::statement insert_stmt{
    "idempotency_insert",
    "INSERT INTO idempotency_keys (user_id, key, fingerprint, status, headers, body) VALUES ($1, $2, $3, $4, $5, $6)"};
const db::statement prune_stmt{"idempotency_prune",
                               "DELETE FROM idempotency_keys WHERE created_at <= now() - interval '24 hours'"};

std::string sha256_hex(std::string_view a, std::string_view b, std::string_view c) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), a.data(), a.size()) != 1 || EVP_DigestUpdate(ctx.get(), "\n", 1) != 1 ||
      EVP_DigestUpdate(ctx.get(), b.data(), b.size()) != 1 || EVP_DigestUpdate(ctx.get(), "\n", 1) != 1 ||
      EVP_DigestUpdate(ctx.get(), c.data(), c.size()) != 1 || EVP_DigestFinal_ex(ctx.get(), md, &len) != 1) {
    throw std::runtime_error("SHA-256 failed");
  }
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(hex[md[i] >> 4]);
    out.push_back(hex[md[i] & 0xf]);
  }
  return out;
}

bool acceptable_key(std::string_view k) {
  if (k.empty() || k.size() > 255) {
    return false;
  }
  for (char c : k) {
    if (c < 0x21 || c > 0x7e) {
      return false;
    }
  }
  return true;
}

// Only our own header values are stored, and none holds a newline.
std::string encode_headers(const http::response& r) {
  std::string out;
  for (const auto& h : r.headers) {
    if (h.name == "x-request-id") {
      continue;
    }
    out += h.name + "\n" + h.value + "\n";
  }
  return out;
}

http::response replay(const db::rows& r) {
  http::response res;
  res.status = static_cast<unsigned>(r.integer(0, 1));
  std::string_view headers = r.text(0, 2);
  while (!headers.empty()) {
    auto nl = headers.find('\n');
    auto name = headers.substr(0, nl);
    headers.remove_prefix(nl + 1);
    nl = headers.find('\n');
    auto value = headers.substr(0, nl);
    headers.remove_prefix(nl + 1);
    res.set(std::string(name), std::string(value));
  }
  res.body = std::string(r.text(0, 3));
  if (!res.body.empty()) {
    res.content_type = "application/json";
  }
  res.set("idempotent-replayed", "true");
  return res;
}

// The stored answer for the key: a replay, a 409, or nullopt if none.
boost::asio::awaitable<boost::system::result<std::optional<http::response>>> stored_answer(
    db::pool& db, const idempotency_key& k) {
  db::query q{&lookup_stmt, {k.user, k.key}};
  auto r = co_await db.execute_one(std::move(q));
  if (!r) {
    co_return r.error();
  }
  if (r->size() == 0) {
    co_return std::optional<http::response>{};
  }
  if (r->text(0, 0) != k.fingerprint) {
    co_return problem(errc::conflict, "This Idempotency-Key was already used with a different request");
  }
  co_return replay(*r);
}

}  // namespace

std::vector<db::query> record(const idempotency_key& k, const http::response& answer) {
  std::vector<db::query> qs;
  qs.push_back({&expire_stmt, {k.user, k.key}});
  qs.push_back({&insert_stmt,
                {k.user, k.key, k.fingerprint, std::to_string(answer.status), encode_headers(answer), answer.body}});
  return qs;
}

boost::asio::awaitable<http::response> run_idempotent(std::shared_ptr<db::pool> db, const request_context& ctx,
                                                      idempotent_work work) {
  auto header = ctx.req.header_value("idempotency-key");
  if (!header) {
    auto r = co_await work(std::nullopt);
    co_return r ? std::move(*r) : problem_from(r.error());
  }
  if (!acceptable_key(*header)) {
    co_return problem(errc::bad_request, "Idempotency-Key must be 1 to 255 visible ASCII characters");
  }
  idempotency_key k{ctx.user, std::string(*header),
                    sha256_hex(http::to_string(ctx.req.verb), ctx.req.path, ctx.req.body)};
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto stored = co_await stored_answer(*db, k);
    if (!stored) {
      co_return problem_from(stored.error());
    }
    if (*stored) {
      co_return std::move(**stored);
    }
    if (attempt == 1) {
      break;
    }
    auto r = co_await work(k);
    if (r) {
      co_return std::move(*r);
    }
    if (r.error() != db::errc::unique_violation) {
      co_return problem_from(r.error());
    }
    // A concurrent request with the same key committed first: answer as it did.
  }
  co_return problem(errc::unavailable, "A concurrent request with this Idempotency-Key is in progress; retry");
}

boost::asio::awaitable<boost::system::result<std::int64_t>> prune_idempotency_keys(db::pool& db) {
  db::query q{&prune_stmt, {}};
  auto r = co_await db.execute_one(std::move(q));
  if (!r) {
    co_return r.error();
  }
  co_return r->affected();
}

}  // namespace todo::tasks
