#include "validate.hpp"

#include "todo/json_parse.hpp"

#include <date/tz.h>

#include <set>

namespace todo::tasks {
namespace {

constexpr std::size_t max_title = 500;
constexpr std::size_t max_description = 20000;
constexpr std::size_t max_tags = 20;
constexpr std::size_t max_tag = 50;

std::size_t code_points(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) {
      ++n;
    }
  }
  return n;
}

// Length in bytes of a whitespace character at the start of s, else 0.
std::size_t space_at_front(std::string_view s) {
  if (s.empty()) {
    return 0;
  }
  if (s[0] == ' ' || s[0] == '\t' || s[0] == '\n' || s[0] == '\r' || s[0] == '\v' || s[0] == '\f') {
    return 1;
  }
  for (std::string_view u : {"\u00a0", "\u2000", "\u2001", "\u2002", "\u2003", "\u2004", "\u2005", "\u2006", "\u2007",
                             "\u2008", "\u2009", "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\ufeff"}) {
    if (s.starts_with(u)) {
      return u.size();
    }
  }
  return 0;
}

std::size_t space_at_back(std::string_view s) {
  for (std::size_t len = 1; len <= 3 && len <= s.size(); ++len) {
    if (space_at_front(s.substr(s.size() - len)) == len) {
      return len;
    }
  }
  return 0;
}

std::string trim(std::string_view s) {
  while (auto n = space_at_front(s)) {
    s.remove_prefix(n);
  }
  while (auto n = space_at_back(s)) {
    s.remove_suffix(n);
  }
  return std::string(s);
}

bool has_control(std::string_view s, bool allow_newlines) {
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (allow_newlines && (c == '\n' || c == '\r' || c == '\t')) {
      continue;
    }
    if (c < 0x20 || c == 0x7f) {
      return true;
    }
  }
  return false;
}

bool tag_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c == ':' || c == '/';
}

using element = simdjson::dom::element;

std::string problem_text(const recurrence_problem& p) { return p.part + ": " + p.message; }

// {"rrule": "..."} or {"every": "...", "interval": n}, to the canonical rule.
std::variant<std::string, std::string> parse_recurrence(const element& v, const recurrence_rules& rules) {
  simdjson::dom::object o;
  if (v.get(o) != simdjson::SUCCESS) {
    return std::variant<std::string, std::string>(std::in_place_index<1>,
                                                  "must be null, {\"rrule\": ...} or {\"every\": ..., \"interval\": n}");
  }
  std::string_view rrule, every;
  std::optional<std::int64_t> interval;
  bool has_rrule = false, has_every = false;
  for (auto member : o) {
    std::string_view k = member.key;
    if (k == "rrule" && member.value.get(rrule) == simdjson::SUCCESS) {
      has_rrule = true;
    } else if (k == "every" && member.value.get(every) == simdjson::SUCCESS) {
      has_every = true;
    } else if (k == "interval") {
      std::int64_t n = 0;
      if (member.value.get(n) != simdjson::SUCCESS) {
        return std::variant<std::string, std::string>(std::in_place_index<1>, "interval: must be a whole number");
      }
      interval = n;
    } else if (k == "rrule" || k == "every") {
      return std::variant<std::string, std::string>(std::in_place_index<1>, std::string(k) + ": must be a string");
    } else {
      return std::variant<std::string, std::string>(std::in_place_index<1>,
                                                    std::string(k) + ": is not a member of recurrence");
    }
  }
  if (has_rrule == has_every) {
    return std::variant<std::string, std::string>(std::in_place_index<1>, "needs exactly one of rrule and every");
  }
  if (has_rrule && interval) {
    return std::variant<std::string, std::string>(std::in_place_index<1>,
                                                  "interval: goes with every; put INTERVAL in the rrule");
  }
  auto parsed = has_rrule ? rules.parse(rrule) : rules.shorthand(every, interval.value_or(1));
  if (auto* p = std::get_if<recurrence_problem>(&parsed)) {
    return std::variant<std::string, std::string>(std::in_place_index<1>, problem_text(*p));
  }
  return std::variant<std::string, std::string>(std::in_place_index<0>, std::get<std::string>(parsed));
}

std::string must_be(std::string_view what, const element& e) {
  return "must be " + std::string(what) + ", not " + std::string(json::type_name(e));
}

}  // namespace

std::string check_title(std::string& title) {
  title = trim(title);
  if (title.empty()) {
    return "must not be empty";
  }
  if (code_points(title) > max_title) {
    return "must be at most 500 characters";
  }
  if (has_control(title, false)) {
    return "must not contain control characters";
  }
  return {};
}

std::string check_description(const std::string& d) {
  if (code_points(d) > max_description) {
    return "must be at most 20000 characters";
  }
  if (d.find('\0') != std::string::npos) {
    return "must not contain NUL characters";
  }
  return {};
}

std::string check_tags(std::vector<std::string>& tags) {
  if (tags.size() > max_tags) {
    return "must have at most 20 tags";
  }
  std::set<std::string> seen;
  for (auto& t : tags) {
    if (t.empty() || t.size() > max_tag) {
      return "each tag must be 1 to 50 characters";
    }
    for (auto& c : t) {
      if (!tag_char(c)) {
        return "tags may contain only letters, digits, '-', '_', ':' and '/'";
      }
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (!seen.insert(t).second) {
      return "tags must be distinct (\"" + t + "\" appears twice)";
    }
  }
  return {};
}

bool valid_timezone(const std::string& name) {
  if (name.empty() || name.size() > 64 || name.find("..") != std::string::npos) {
    return false;
  }
  try {
    return date::locate_zone(name) != nullptr;
  } catch (const std::exception&) {
    return false;
  }
}

parsed_body parse_task_body(std::string_view body, body_mode mode, const recurrence_rules* rules) {
  parsed_body out;
  auto parsed = json::parse_object(body);
  out.bad_request = std::move(parsed.error);
  out.errors = std::move(parsed.errors);
  if (!parsed.object) {
    return out;
  }
  auto& errs = out.errors;
  auto& p = out.patch;
  std::set<std::string_view> seen;
  for (const auto& [key, v] : parsed.members) {
    std::string name(key);
    seen.insert(key);
    bool is_null = v.is_null();
    if (key == "title") {
      std::string_view s;
      if (is_null) {
        errs.push_back({name, "must not be null"});
      } else if (v.get(s) != simdjson::SUCCESS) {
        errs.push_back({name, must_be("a string", v)});
      } else {
        std::string t(s);
        if (auto m = check_title(t); !m.empty()) {
          errs.push_back({name, m});
        } else {
          p.title = std::move(t);
        }
      }
    } else if (key == "description") {
      std::string_view s;
      if (is_null) {
        p.description = std::string{};
      } else if (v.get(s) != simdjson::SUCCESS) {
        errs.push_back({name, must_be("a string", v)});
      } else if (auto m = check_description(std::string(s)); !m.empty()) {
        errs.push_back({name, m});
      } else {
        p.description = std::string(s);
      }
    } else if (key == "priority") {
      std::string_view s;
      if (is_null) {
        p.prio = priority::none;
      } else if (v.get(s) != simdjson::SUCCESS || !parse_priority(s)) {
        errs.push_back({name, "must be one of none, low, medium, high, urgent"});
      } else {
        p.prio = parse_priority(s);
      }
    } else if (key == "tags") {
      simdjson::dom::array arr;
      if (is_null) {
        p.tags = std::vector<std::string>{};
      } else if (v.get(arr) != simdjson::SUCCESS) {
        errs.push_back({name, must_be("an array of strings", v)});
      } else {
        std::vector<std::string> tags;
        bool ok = true;
        for (auto item : arr) {
          std::string_view s;
          if (item.get(s) != simdjson::SUCCESS) {
            errs.push_back({name, "each tag must be a string"});
            ok = false;
            break;
          }
          tags.emplace_back(s);
        }
        if (ok) {
          if (auto m = check_tags(tags); !m.empty()) {
            errs.push_back({name, m});
          } else {
            p.tags = std::move(tags);
          }
        }
      }
    } else if (key == "due_at") {
      std::string_view s;
      if (is_null) {
        p.due_at = std::optional<time::ms>{};
      } else if (v.get(s) != simdjson::SUCCESS) {
        errs.push_back({name, must_be("an RFC 3339 timestamp string", v)});
      } else if (auto t = time::parse_rfc3339(s)) {
        p.due_at = t;
      } else {
        errs.push_back({name, "must be an RFC 3339 timestamp with an offset, such as 2026-03-02T17:00:00Z"});
      }
    } else if (key == "timezone") {
      std::string_view s;
      if (is_null) {
        p.timezone = "UTC";
      } else if (v.get(s) != simdjson::SUCCESS) {
        errs.push_back({name, must_be("an IANA time zone name", v)});
      } else if (!valid_timezone(std::string(s))) {
        errs.push_back({name, "must be an IANA time zone name, such as Europe/Berlin"});
      } else {
        p.timezone = std::string(s);
      }
    } else if (key == "recurrence") {
      if (is_null) {
        p.rrule = std::optional<std::string>{};
      } else if (rules == nullptr) {
        errs.push_back({name, "recurring tasks are not available on this server"});
      } else {
        auto r = parse_recurrence(v, *rules);
        if (r.index() == 1) {
          errs.push_back({name, std::get<1>(r)});
        } else {
          p.rrule = std::get<0>(std::move(r));
        }
      }
    } else if (key == "reminders") {
      auto r = parse_reminders(v);
      if (auto* bad = std::get_if<field_errors>(&r)) {
        errs.insert(errs.end(), bad->begin(), bad->end());
      } else {
        p.reminders = std::get<0>(std::move(r));
      }
    } else if (key == "completed") {
      errs.push_back({name, "use POST /api/v1/tasks/{id}/complete or /reopen"});
    } else if (key == "id" || key == "user_id" || key == "created_at" || key == "updated_at" || key == "version" ||
               key == "completed_at" || key == "series_id") {
      errs.push_back({name, "is set by the server"});
    } else {
      errs.push_back({name, "is not a known field"});
    }
  }
  if (mode == body_mode::create && !p.title && !seen.contains("title")) {
    errs.push_back({"title", "is required"});
  }
  return out;
}

bool apply(const task_patch& p, task& t) {
  bool changed = false;
  auto set = [&changed](auto& field, const auto& value) {
    if (!(field == value)) {
      field = value;
      changed = true;
    }
  };
  if (p.title) {
    set(t.title, *p.title);
  }
  if (p.description) {
    set(t.description, *p.description);
  }
  if (p.prio) {
    set(t.prio, *p.prio);
  }
  if (p.tags) {
    set(t.tags, *p.tags);
  }
  if (p.due_at) {
    set(t.due_at, *p.due_at);
  }
  if (p.timezone) {
    set(t.timezone, *p.timezone);
  }
  if (p.reminders) {
    auto rs = resolve(*p.reminders, t.reminders, t.due_at);
    if (t.completed) {
      cancel_pending(rs);
    }
    set(t.reminders, rs);
  } else if (p.due_at) {
    auto rs = t.reminders;
    retime(rs, t.due_at);
    set(t.reminders, rs);
  }
  if (p.rrule && !(t.rrule == *p.rrule)) {
    set(t.rrule, *p.rrule);
    // A new rule applies from this occurrence on: its DTSTART.
    t.series_start = t.rrule ? t.due_at : std::nullopt;
  }
  // The first occurrence of a series names it; a task that stops recurring
  // keeps its series (the past occurrences stay linked).
  if (t.rrule && !t.series_id) {
    t.series_id = t.id;
    changed = true;
  }
  return changed;
}

field_errors check_task(const task* before, const task& t, const recurrence_rules* rules,
                        const std::vector<reminder_input>* reminders, time::ms now) {
  static const std::vector<reminder> none;
  field_errors errs = check_reminders(reminders, before != nullptr ? before->reminders : none, t.reminders, t.due_at, now);
  if (!t.rrule || rules == nullptr) {
    return errs;
  }
  if (!t.due_at) {
    errs.push_back({"recurrence", "needs due_at: the rule counts from the task's due date"});
    return errs;
  }
  if (before != nullptr && before->rrule == t.rrule) {
    return errs;
  }
  if (auto p = rules->check(*t.rrule, t.timezone, *t.due_at)) {
    errs.push_back({p->part == "timezone" ? "timezone" : "recurrence", problem_text(*p)});
  }
  return errs;
}

}  // namespace todo::tasks
