#include "listing.hpp"

#include "task_store.hpp"
#include "validate.hpp"

#include "todo/crypto.hpp"
#include "todo/json.hpp"
#include "todo/json_parse.hpp"
#include "todo/uuid.hpp"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <set>

namespace todo::tasks::listing {
namespace {

constexpr std::size_t max_sort_terms = 5;
// The search uses at most this many distinct words of q, so a long query
// cannot make one statement expensive.
constexpr int max_search_lexemes = 32;

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  while (true) {
    auto at = s.find(sep);
    out.push_back(s.substr(0, at));
    if (at == std::string_view::npos) {
      return out;
    }
    s = s.substr(at + 1);
  }
}

std::size_t utf8_chars(std::string_view s) {
  return static_cast<std::size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::optional<sort_key> parse_sort_key(std::string_view s) {
  if (s == "due_at") return sort_key::due_at;
  if (s == "priority") return sort_key::priority;
  if (s == "created_at") return sort_key::created_at;
  if (s == "updated_at") return sort_key::updated_at;
  if (s == "title") return sort_key::title;
  return std::nullopt;
}

std::string_view name_of(sort_key k) {
  switch (k) {
    case sort_key::due_at: return "due_at";
    case sort_key::priority: return "priority";
    case sort_key::created_at: return "created_at";
    case sort_key::updated_at: return "updated_at";
    case sort_key::title: return "title";
  }
  return "";
}

std::optional<std::string> one_tag(std::string_view v) {
  std::vector<std::string> t{std::string(v)};
  if (!check_tags(t).empty()) {
    return std::nullopt;
  }
  return std::move(t.front());
}

constexpr std::string_view tag_rule = "each tag is 1 to 50 letters, digits, '-', '_', ':' or '/'";

std::optional<field_error> parse_one(filter& f, const std::string& k, const std::string& v) {
  auto bad = [&](std::string m) { return field_error{k, std::move(m)}; };
  if (k == "status") {
    if (v != "open" && v != "completed" && v != "all") {
      return bad("must be one of open, completed, all");
    }
    f.status = v;
  } else if (k == "priority") {
    for (auto item : split(v, ',')) {
      auto p = parse_priority(item);
      if (!p) {
        return bad("must be one or a comma list of none, low, medium, high, urgent");
      }
      if (std::find(f.priorities.begin(), f.priorities.end(), *p) == f.priorities.end()) {
        f.priorities.push_back(*p);
      }
    }
  } else if (k == "tag") {
    auto t = one_tag(v);
    if (!t) {
      return bad(std::string(tag_rule));
    }
    f.all_tags.push_back(std::move(*t));
  } else if (k == "any_tag") {
    for (auto item : split(v, ',')) {
      auto t = one_tag(item);
      if (!t) {
        return bad("must be a comma list of tags; " + std::string(tag_rule));
      }
      f.any_tags.push_back(std::move(*t));
    }
  } else if (k == "due_before" || k == "due_after") {
    auto t = time::parse_rfc3339(v);
    if (!t) {
      return bad("must be an RFC 3339 timestamp with an offset, such as 2026-03-02T17:00:00Z");
    }
    (k == "due_before" ? f.due_before : f.due_after) = t;
  } else if (k == "overdue") {
    if (v != "true" && v != "false") {
      return bad("must be true or false");
    }
    f.overdue = v == "true";
  } else if (k == "q") {
    if (!simdjson::validate_utf8(v.data(), v.size())) {
      return bad("must be UTF-8 text");
    }
    if (v.find('\0') != std::string::npos) {
      return bad("must not contain NUL characters");
    }
    if (v.find_first_not_of(" \t\r\n") == std::string::npos) {
      return bad("must not be empty");
    }
    if (utf8_chars(v) > max_query_chars) {
      return bad("must be at most " + std::to_string(max_query_chars) + " characters");
    }
    std::size_t words = 0;
    for (auto w : split(v, ' ')) {
      words += w.empty() ? 0 : 1;
    }
    if (words > max_query_words) {
      return bad("must have at most " + std::to_string(max_query_words) + " words");
    }
    f.q = v;
  } else if (k == "sort") {
    auto items = split(v, ',');
    if (items.size() > max_sort_terms) {
      return bad("has at most 5 keys");
    }
    for (auto item : items) {
      sort_term t;
      if (!item.empty() && item.front() == '-') {
        t.descending = true;
        item.remove_prefix(1);
      }
      auto key = parse_sort_key(item);
      if (!key) {
        return bad("unknown key '" + shown_name(std::string(item)) +
                   "'; use due_at, priority, created_at, updated_at or title, '-' first for descending");
      }
      t.key = *key;
      for (const auto& prior : f.sort) {
        if (prior.key == t.key) {
          return bad("names " + std::string(item) + " twice");
        }
      }
      f.sort.push_back(t);
    }
  } else if (k == "limit") {
    int n = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc{} || p != v.data() + v.size() || n < 1 || n > max_limit) {
      return bad("must be an integer from 1 to 200");
    }
    f.limit = n;
  } else if (k == "cursor") {
    f.cursor = v;
  } else {
    return field_error{shown_name(k), "is not a known parameter"};
  }
  return std::nullopt;
}

// Canonical form of everything that selects and orders rows: a cursor is
// valid only for the query (and user) that produced it. Length-prefixed, so
// no two different queries share a form.
std::string shape(const filter& f, const std::string& user) {
  std::string out = "tasks-v1";
  auto add = [&out](std::string_view s) {
    out += '|';
    out += std::to_string(s.size());
    out += ':';
    out += s;
  };
  add(user);
  add(f.status);
  std::vector<int> prios;
  for (auto p : f.priorities) {
    prios.push_back(static_cast<int>(p));
  }
  std::sort(prios.begin(), prios.end());
  std::string p;
  for (int v : prios) {
    p += std::to_string(v);
  }
  add(p);
  for (const auto* tags : {&f.all_tags, &f.any_tags}) {
    std::set<std::string> sorted(tags->begin(), tags->end());
    std::string joined;
    for (const auto& t : sorted) {
      joined += t + ",";
    }
    add(joined);
  }
  add(f.due_after ? std::to_string(time::to_unix_ms(*f.due_after)) : "-");
  add(f.due_before ? std::to_string(time::to_unix_ms(*f.due_before)) : "-");
  add(f.overdue ? (*f.overdue ? "t" : "f") : "-");
  add(f.q ? *f.q : std::string("\x01"));
  std::string s;
  for (const auto& t : f.sort) {
    s += t.descending ? "-" : "+";
    s += name_of(t.key);
  }
  add(s);
  return out;
}

std::string shape_digest(const filter& f, const std::string& user) {
  auto d = crypto::sha256(shape(f, user));
  return crypto::b64url_encode(crypto::as_chars(d).substr(0, 12));
}

constexpr std::size_t mac_bytes = 16;

// A sort expression, always non-NULL (tasks without due_at sort last either
// way through the infinities), in the exact form the indexes of
// 003_listing.sql use. Descending priority is ascending -priority, so the
// common -priority,due_at order is one index range.
struct expression {
  std::string_view sql;
  std::string_view cast;
  bool ascending;
};

expression expression_of(sort_term t) {
  switch (t.key) {
    case sort_key::due_at:
      return t.descending ? expression{"coalesce(due_at, '-infinity'::timestamptz)", "timestamptz", false}
                          : expression{"coalesce(due_at, 'infinity'::timestamptz)", "timestamptz", true};
    case sort_key::priority:
      return t.descending ? expression{"(-priority)", "smallint", true} : expression{"priority", "smallint", true};
    case sort_key::created_at: return {"created_at", "timestamptz", !t.descending};
    case sort_key::updated_at: return {"updated_at", "timestamptz", !t.descending};
    case sort_key::title: return {"title", "text", !t.descending};
  }
  return {"id", "uuid", true};
}

constexpr expression rank_expression{"ts_rank(search, (SELECT tsq FROM s))", "float4", false};
constexpr std::string_view due_key = "coalesce(due_at, 'infinity'::timestamptz)";

std::vector<expression> expressions(const filter& f) {
  std::vector<expression> out;
  if (f.ranked()) {
    out.push_back(rank_expression);
  }
  for (auto t : f.sort) {
    out.push_back(expression_of(t));
  }
  return out;
}

class sql_builder {
 public:
  std::string sql;
  std::vector<db::param> params;

  std::string bind(std::string value, std::string_view cast) {
    params.emplace_back(std::move(value));
    std::string p = "$" + std::to_string(params.size());
    if (!cast.empty()) {
      p += "::";
      p += cast;
    }
    return p;
  }
  void where(std::string_view condition) {
    sql += " AND ";
    sql += condition;
  }
};

}  // namespace

std::string shown_name(const std::string& k) {
  if (k.size() > 64 || !simdjson::validate_utf8(k.data(), k.size())) {
    return "(unreadable parameter name)";
  }
  return k;
}

parse_result parse(const std::vector<std::pair<std::string, std::string>>& query) {
  filter f;
  std::set<std::string> seen;
  for (const auto& [k, v] : query) {
    if (k != "tag" && !seen.insert(k).second) {
      return field_error{shown_name(k), "is given more than once"};
    }
    if (auto e = parse_one(f, k, v)) {
      return std::move(*e);
    }
  }
  if (f.all_tags.size() > 20 || f.any_tags.size() > 20) {
    return field_error{f.all_tags.size() > 20 ? "tag" : "any_tag", "names at most 20 tags"};
  }
  if (f.due_after && f.due_before && *f.due_after >= *f.due_before) {
    return field_error{"due_after", "must be before due_before"};
  }
  if (f.overdue == true && f.status == "completed") {
    return field_error{"overdue", "only open tasks are overdue; drop status=completed"};
  }
  return f;
}

std::string encode_cursor(const filter& f, const std::string& user, const position& p, std::string_view key) {
  json::writer w;
  w.begin_object().key("s").value(shape_digest(f, user)).key("k").begin_array();
  for (const auto& k : p.keys) {
    w.value(k);
  }
  w.end_array().key("i").value(p.id).end_object();
  auto payload = w.take();
  auto mac = crypto::hmac_sha256(key, payload);
  std::string out = crypto::b64url_encode(payload);
  out += '.';
  out += crypto::b64url_encode(mac ? crypto::as_chars(*mac).substr(0, mac_bytes) : std::string_view{});
  return out;
}

std::optional<position> decode_cursor(const filter& f, const std::string& user, std::string_view cursor,
                                      std::string_view key) {
  auto dot = cursor.find('.');
  if (dot == std::string_view::npos || cursor.size() > 4096) {
    return std::nullopt;
  }
  auto payload = crypto::b64url_decode(cursor.substr(0, dot));
  auto mac = crypto::b64url_decode(cursor.substr(dot + 1));
  if (!payload || !mac) {
    return std::nullopt;
  }
  auto expected = crypto::hmac_sha256(key, *payload);
  if (!expected || !crypto::equal(*mac, crypto::as_chars(*expected).substr(0, mac_bytes))) {
    return std::nullopt;
  }
  // Signed by us; still checked whole, since the key may be shared with an
  // older or newer server version.
  auto parsed = json::parse_body(*payload);
  if (!parsed.error.empty()) {
    return std::nullopt;
  }
  simdjson::dom::object o;
  std::string_view s, id;
  simdjson::dom::array keys;
  if (parsed.root.get(o) != simdjson::SUCCESS || o["s"].get(s) != simdjson::SUCCESS ||
      o["k"].get(keys) != simdjson::SUCCESS || o["i"].get(id) != simdjson::SUCCESS ||
      s != shape_digest(f, user) || keys.size() != key_count(f)) {
    return std::nullopt;
  }
  position p;
  auto normalized = uuid::normalize(id);
  if (!normalized) {
    return std::nullopt;
  }
  p.id = std::move(*normalized);
  for (auto k : keys) {
    std::string_view v;
    if (k.get(v) != simdjson::SUCCESS) {
      return std::nullopt;
    }
    p.keys.emplace_back(v);
  }
  return p;
}

std::size_t key_count(const filter& f) {
  return f.sort.size() + (f.ranked() ? 1 : 0);
}

db::query page_query(const filter& f, const std::string& user, const std::optional<position>& after, time::ms now) {
  sql_builder b;
  auto exprs = expressions(f);
  if (f.q) {
    b.sql = "WITH s AS (SELECT to_tsquery('simple', string_agg(quote_literal(lexeme) || ':*', ' & ')) AS tsq"
            " FROM (SELECT lexeme FROM unnest(to_tsvector('simple', " +
            b.bind(*f.q, "text") + ")) LIMIT " + std::to_string(max_search_lexemes) + ") w) ";
  }
  b.sql += "SELECT ";
  b.sql += store::task_columns;
  // Named k0, k1, ...: an output column named like a task column
  // ("created_at") would be what ORDER BY created_at sorts by.
  for (std::size_t i = 0; i < exprs.size(); ++i) {
    b.sql += ", (";
    b.sql += exprs[i].sql;
    b.sql += ")::text AS k" + std::to_string(i);
  }
  b.sql += " FROM tasks WHERE user_id = " + b.bind(user, "");

  bool open_only = f.status == "open" || f.overdue == true;
  if (open_only) {
    b.where("completed = false");
  } else if (f.status == "completed") {
    b.where("completed = true");
  }
  if (!f.priorities.empty()) {
    std::vector<std::string> p;
    for (auto v : f.priorities) {
      p.push_back(std::to_string(static_cast<int>(v)));
    }
    b.where("priority = ANY(" + b.bind(db::array_literal(p), "smallint[]") + ")");
  }
  if (!f.all_tags.empty()) {
    b.where("tags @> " + b.bind(db::array_literal(f.all_tags), "text[]"));
  }
  if (!f.any_tags.empty()) {
    b.where("tags && " + b.bind(db::array_literal(f.any_tags), "text[]"));
  }
  // Due filters on the indexed expression; a task without due_at is in no
  // due range (its key is infinity).
  if (f.due_after) {
    b.where(std::string(due_key) + " >= " + b.bind(time::format(*f.due_after), "timestamptz"));
    if (!f.due_before) {
      b.where(std::string(due_key) + " < 'infinity'::timestamptz");
    }
  }
  if (f.due_before) {
    b.where(std::string(due_key) + " < " + b.bind(time::format(*f.due_before), "timestamptz"));
  }
  if (f.overdue) {
    auto at = b.bind(time::format(now), "timestamptz");
    if (*f.overdue) {
      b.where(std::string(due_key) + " < " + at);
    } else {
      b.where("(completed OR " + std::string(due_key) + " >= " + at + ")");
    }
  }
  if (f.q) {
    b.where("search @@ (SELECT tsq FROM s)");
  }

  if (after) {
    std::vector<std::string> values;
    for (std::size_t i = 0; i < exprs.size(); ++i) {
      values.push_back(b.bind(after->keys[i], exprs[i].cast));
    }
    auto id = b.bind(after->id, "uuid");
    bool all_ascending = std::all_of(exprs.begin(), exprs.end(), [](const expression& e) { return e.ascending; });
    if (all_ascending) {
      // One row comparison: an index range when an index has these keys.
      std::string l = "(", r = "(";
      for (std::size_t i = 0; i < exprs.size(); ++i) {
        l += std::string(exprs[i].sql) + ", ";
        r += values[i] + ", ";
      }
      b.where(l + "id) > " + r + id + ")");
    } else {
      // Mixed directions: the first key bounds the range, the rest break
      // ties in order.
      b.where(std::string(exprs[0].sql) + (exprs[0].ascending ? " >= " : " <= ") + values[0]);
      std::string tail = "id > " + id;
      for (std::size_t i = exprs.size(); i-- > 0;) {
        std::string e(exprs[i].sql);
        tail = "(" + e + (exprs[i].ascending ? " > " : " < ") + values[i] + " OR (" + e + " = " + values[i] +
               " AND " + tail + "))";
      }
      b.where(tail);
    }
  }

  b.sql += " ORDER BY ";
  for (const auto& e : exprs) {
    b.sql += std::string(e.sql) + (e.ascending ? ", " : " DESC, ");
  }
  b.sql += "id LIMIT " + b.bind(std::to_string(f.limit + 1), "int");
  return db::query{nullptr, std::move(b.params), std::move(b.sql)};
}

}  // namespace todo::tasks::listing
