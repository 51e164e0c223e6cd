#pragma once
// GET /api/v1/tasks: the query parameters, the keyset cursor, and the SQL of
// one page. Pure: the handler runs the query this builds.
#include "task.hpp"
#include "todo/db.hpp"
#include "todo/errors.hpp"

#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace todo::tasks::listing {

enum class sort_key { due_at, priority, created_at, updated_at, title };

struct sort_term {
  sort_key key;
  bool descending = false;
};

inline constexpr int max_limit = 200;
inline constexpr std::size_t max_query_chars = 500;
inline constexpr std::size_t max_query_words = 16;

struct filter {
  std::string status = "open";  // open, completed, all
  std::vector<priority> priorities;  // any of; empty = every priority
  std::vector<std::string> all_tags;  // has every one
  std::vector<std::string> any_tags;  // has at least one
  std::optional<time::ms> due_after;   // inclusive
  std::optional<time::ms> due_before;  // exclusive
  std::optional<bool> overdue;
  std::optional<std::string> q;
  std::vector<sort_term> sort;  // empty: by rank when q is set, else creation order
  int limit = 50;
  std::optional<std::string> cursor;  // as sent; checked by decode_cursor

  bool ranked() const { return q && sort.empty(); }
};

// A parameter name as an error may echo it: readable and valid JSON.
std::string shown_name(const std::string& k);

// One bad parameter: a 400 naming it.
using parse_result = std::variant<filter, field_error>;
parse_result parse(const std::vector<std::pair<std::string, std::string>>& query);

// Where the previous page ended: the text of each sort expression of its
// last row (as PostgreSQL printed it, so it compares exactly), then its id.
struct position {
  std::vector<std::string> keys;
  std::string id;
};

// The cursor is base64url(payload) "." base64url(HMAC-SHA256(key, payload)),
// its payload naming the user and the query it belongs to, so a forged,
// mangled or borrowed cursor is refused.
std::string encode_cursor(const filter& f, const std::string& user, const position& p, std::string_view key);
std::optional<position> decode_cursor(const filter& f, const std::string& user, std::string_view cursor,
                                      std::string_view key);

// The page's statement: the task columns of task_store, then one text
// column per sort expression (the next cursor's keys). At most limit + 1
// rows, so the caller knows whether another page exists.
db::query page_query(const filter& f, const std::string& user, const std::optional<position>& after, time::ms now);
// How many sort-expression columns page_query selects after the task's.
std::size_t key_count(const filter& f);

}  // namespace todo::tasks::listing
