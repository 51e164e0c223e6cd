#include "handlers.hpp"

#include "todo/problem.hpp"
#include "todo/uuid.hpp"

#include <charconv>

namespace todo::tasks {
namespace {
const db::statement begin_stmt{"tx_begin", "BEGIN"};
const db::statement commit_stmt{"tx_commit", "COMMIT"};
const db::statement rollback_stmt{"tx_rollback", "ROLLBACK"};

// result<bool> cannot take an error_code implicitly: it converts to bool.
boost::system::result<bool> failed(boost::system::error_code ec) {
  return {boost::system::in_place_error, ec};
}

std::vector<db::query> rollback() {
  std::vector<db::query> qs;
  qs.push_back({&rollback_stmt, {}});
  return qs;
}

}  // namespace

std::optional<http::response> require_json(const http::request& req, bool merge_patch) {
  auto ct = req.header_value("content-type");
  std::string media;
  if (ct) {
    for (char c : http::trim_ows(ct->substr(0, ct->find(';')))) {
      media.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
  }
  if (media == "application/json" || (merge_patch && media == "application/merge-patch+json")) {
    return std::nullopt;
  }
  auto r = problem(errc::unsupported_media_type, merge_patch
                                                     ? "Send Content-Type: application/json or application/merge-patch+json"
                                                     : "Send Content-Type: application/json");
  r.set("accept-patch", "application/merge-patch+json, application/json");
  return r;
}

std::optional<std::string> task_id(const request_context& ctx) { return uuid::normalize(ctx.param("id")); }

http::response not_found() { return problem(errc::not_found, "No task with this id"); }

bool precondition::matches(std::int64_t v) const {
  return any || std::find(versions.begin(), versions.end(), v) != versions.end();
}

std::variant<std::monostate, precondition, http::response> read_if_match(const http::request& req) {
  auto h = req.header_value("if-match");
  if (!h) {
    return std::monostate{};
  }
  precondition p;
  std::string_view rest = *h;
  while (!rest.empty()) {
    auto comma = rest.find(',');
    auto item = http::trim_ows(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    if (item == "*") {
      p.any = true;
      continue;
    }
    // If-Match compares strongly (RFC 9110 13.1.1): a weak tag never matches.
    bool weak = item.starts_with("W/");
    if (weak) {
      item.remove_prefix(2);
    }
    std::int64_t v = 0;
    if (item.size() < 3 || item.front() != '"' || item.back() != '"') {
      return problem(errc::bad_request, "If-Match must hold entity tags such as \"3\"");
    }
    auto inner = item.substr(1, item.size() - 2);
    auto [ptr, ec] = std::from_chars(inner.data(), inner.data() + inner.size(), v);
    if (!weak && ec == std::errc{} && ptr == inner.data() + inner.size()) {
      p.versions.push_back(v);
    }
    // A well-formed tag that is not one of ours simply never matches.
  }
  return p;
}

http::response task_answer(unsigned status, const task& t) {
  auto r = http::json(status, to_json(t));
  r.set("etag", etag(t));
  return r;
}

asio::awaitable<boost::system::result<bool>> commit(db::pool& db, db::query change, std::vector<db::query> record) {
  if (record.empty()) {
    auto r = co_await db.execute_one(std::move(change));
    if (!r) {
      co_return failed(r.error());
    }
    co_return r->affected() == 1;
  }
  auto l = co_await db.acquire();
  if (!l) {
    co_return failed(l.error());
  }
  std::vector<db::query> first;
  first.push_back({&begin_stmt, {}});
  first.push_back(std::move(change));
  auto applied = co_await l->execute(std::move(first));
  if (!applied || (*applied)[1].affected() != 1) {
    // A failed statement leaves the transaction aborted; either way end it.
    co_await l->execute(rollback());
    if (!applied) {
      co_return failed(applied.error());
    }
    co_return false;
  }
  record.push_back({&commit_stmt, {}});
  auto done = co_await l->execute(std::move(record));
  if (!done) {
    co_await l->execute(rollback());
    co_return failed(done.error());
  }
  co_return true;
}

}  // namespace todo::tasks
