#include "reminder.hpp"

#include "todo/json.hpp"
#include "todo/uuid.hpp"

#include <charconv>

namespace todo::tasks {
namespace {

using std::chrono::milliseconds;
constexpr auto max_offset = std::chrono::hours(24 * 366);

// Digits (and for seconds a fraction) before a designator letter.
struct component {
  std::int64_t whole = 0;
  std::int64_t millis = 0;  // the fraction, in thousandths
  char unit = 0;
};

std::optional<component> next_component(std::string_view& s, bool allow_fraction) {
  component c;
  std::size_t i = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    ++i;
  }
  if (i == 0 || i > 9) {
    return std::nullopt;
  }
  std::from_chars(s.data(), s.data() + i, c.whole);
  if (allow_fraction && i < s.size() && (s[i] == '.' || s[i] == ',')) {
    std::size_t j = i + 1;
    int digits = 0;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9') {
      if (digits < 3) {
        c.millis = c.millis * 10 + (s[j] - '0');
      }
      ++digits;
      ++j;
    }
    if (digits == 0) {
      return std::nullopt;
    }
    for (int d = digits; d < 3; ++d) {
      c.millis *= 10;
    }
    i = j;
  }
  if (i >= s.size()) {
    return std::nullopt;
  }
  c.unit = s[i];
  s.remove_prefix(i + 1);
  return c;
}

std::string item(std::size_t i, std::string_view member = {}) {
  auto s = "reminders[" + std::to_string(i) + "]";
  if (!member.empty()) {
    s += ".";
    s += member;
  }
  return s;
}

const reminder* find_by_id(const std::vector<reminder>& rs, std::string_view id) {
  for (const auto& r : rs) {
    if (r.id == id) {
      return &r;
    }
  }
  return nullptr;
}

bool same_time(const reminder& r, const reminder_input& in) {
  return in.at ? r.at == in.at : (r.before.has_value() && r.offset == in.offset);
}

thread_local simdjson::dom::parser stored_parser;

}  // namespace

std::optional<milliseconds> parse_duration(std::string_view s) {
  if (s.size() < 3 || s.front() != 'P') {
    return std::nullopt;
  }
  s.remove_prefix(1);
  milliseconds total{0};
  bool any = false;
  bool in_time = false;
  // Designators must come in this order, each at most once.
  std::string_view order = "WDHMS";
  std::size_t seen = 0;
  while (!s.empty()) {
    if (s.front() == 'T') {
      if (in_time || s.size() == 1) {
        return std::nullopt;
      }
      in_time = true;
      s.remove_prefix(1);
      continue;
    }
    auto c = next_component(s, in_time);
    if (!c) {
      return std::nullopt;
    }
    auto pos = order.find(c->unit);
    if (pos == std::string_view::npos || pos < seen || (in_time != (pos >= 2)) || (c->millis != 0 && c->unit != 'S')) {
      return std::nullopt;
    }
    if (c->unit == 'W' && (any || !s.empty())) {
      return std::nullopt;  // weeks stand alone
    }
    seen = pos + 1;
    any = true;
    switch (c->unit) {
      case 'W': total += std::chrono::hours(24 * 7) * c->whole; break;
      case 'D': total += std::chrono::hours(24) * c->whole; break;
      case 'H': total += std::chrono::hours(c->whole); break;
      case 'M': total += std::chrono::minutes(c->whole); break;
      default: total += std::chrono::seconds(c->whole) + milliseconds(c->millis); break;
    }
    if (total > max_offset) {
      return std::nullopt;
    }
  }
  if (!any) {
    return std::nullopt;
  }
  return total;
}

std::variant<std::vector<reminder_input>, field_errors> parse_reminders(const simdjson::dom::element& v) {
  field_errors errs;
  std::vector<reminder_input> out;
  if (v.is_null()) {
    return out;
  }
  simdjson::dom::array arr;
  if (v.get(arr) != simdjson::SUCCESS) {
    errs.push_back({"reminders", "must be an array of {\"at\": timestamp} or {\"before\": duration}"});
    return errs;
  }
  if (arr.size() > max_reminders) {
    errs.push_back({"reminders", "must have at most 10 reminders"});
    return errs;
  }
  std::size_t i = 0;
  for (auto el : arr) {
    simdjson::dom::object o;
    if (el.get(o) != simdjson::SUCCESS) {
      errs.push_back({item(i), "must be {\"at\": timestamp} or {\"before\": duration}"});
      ++i;
      continue;
    }
    reminder_input in;
    bool ok = true;
    for (auto m : o) {
      std::string_view k = m.key;
      std::string_view s;
      if (k == "at") {
        if (m.value.get(s) != simdjson::SUCCESS || !time::parse_rfc3339(s)) {
          errs.push_back({item(i, "at"), "must be an RFC 3339 timestamp with an offset"});
          ok = false;
        } else {
          in.at = time::parse_rfc3339(s);
        }
      } else if (k == "before") {
        std::optional<milliseconds> d;
        if (m.value.get(s) == simdjson::SUCCESS) {
          d = parse_duration(s);
        }
        if (!d) {
          errs.push_back({item(i, "before"),
                          "must be an ISO 8601 duration of days, hours, minutes and seconds, such as PT15M or P1DT2H "
                          "(at most 366 days)"});
          ok = false;
        } else {
          in.before = std::string(s);
          in.offset = *d;
        }
      } else if (k == "id") {
        std::optional<std::string> id;
        if (m.value.get(s) == simdjson::SUCCESS) {
          id = uuid::normalize(s);
        }
        if (!id) {
          errs.push_back({item(i, "id"), "must be the id of one of the task's reminders"});
          ok = false;
        } else {
          in.id = std::move(id);
        }
      } else if (k == "fire_at" || k == "state") {
        // Set by the server; accepted so that a reminder read from the API
        // can be sent back as it is.
      } else {
        errs.push_back({item(i, k), "is not a member of a reminder"});
        ok = false;
      }
    }
    if (ok && in.at.has_value() == in.before.has_value()) {
      errs.push_back({item(i), "needs exactly one of at and before"});
      ok = false;
    }
    if (ok) {
      out.push_back(std::move(in));
    }
    ++i;
  }
  if (!errs.empty()) {
    return errs;
  }
  return out;
}

std::vector<reminder> resolve(const std::vector<reminder_input>& inputs, const std::vector<reminder>& current,
                              const std::optional<time::ms>& due) {
  std::vector<reminder> out;
  std::vector<bool> taken(current.size(), false);
  for (const auto& in : inputs) {
    reminder r;
    r.at = in.at;
    r.before = in.before;
    r.offset = in.offset;
    if (in.before && !due) {
      continue;  // check_reminders reports it
    }
    r.fire_at = in.at ? *in.at : *due - in.offset;
    // The reminder this one continues: the one named, else the first one
    // with the same time not already continued.
    const reminder* prior = nullptr;
    for (std::size_t j = 0; j < current.size(); ++j) {
      bool match = in.id ? current[j].id == *in.id : same_time(current[j], in);
      if (!taken[j] && match) {
        prior = &current[j];
        taken[j] = true;
        break;
      }
    }
    r.id = prior != nullptr ? prior->id : (in.id ? *in.id : uuid::v7());
    if (prior != nullptr && prior->fire_at == r.fire_at) {
      r.state = prior->state;
    }
    out.push_back(std::move(r));
  }
  return out;
}

void retime(std::vector<reminder>& rs, const std::optional<time::ms>& due) {
  for (auto& r : rs) {
    if (!r.before || !due) {
      continue;
    }
    auto at = *due - r.offset;
    if (at != r.fire_at) {
      r.fire_at = at;
      r.state = "scheduled";
    }
  }
}

field_errors check_reminders(const std::vector<reminder_input>* inputs, const std::vector<reminder>& previous,
                             const std::vector<reminder>& after, const std::optional<time::ms>& due, time::ms now) {
  field_errors errs;
  if (inputs != nullptr) {
    for (std::size_t i = 0; i < inputs->size(); ++i) {
      const auto& in = (*inputs)[i];
      if (in.before && !due) {
        errs.push_back({item(i, "before"), "needs due_at: the reminder is relative to the task's due date"});
      }
      if (in.id && find_by_id(previous, *in.id) == nullptr) {
        errs.push_back({item(i, "id"), "must be the id of one of the task's reminders"});
      }
    }
    if (!errs.empty()) {
      return errs;
    }
  }
  if (after.size() > max_reminders) {
    errs.push_back({"reminders", "must have at most 10 reminders"});
  }
  for (std::size_t i = 0; i < after.size(); ++i) {
    const auto& r = after[i];
    const auto* prior = find_by_id(previous, r.id);
    bool moved = prior == nullptr || prior->fire_at != r.fire_at;
    if (moved && r.state == "scheduled" && r.fire_at < now - reminder_grace) {
      auto field = inputs != nullptr ? item(i) : std::string("due_at");
      errs.push_back({field, "fires at " + time::format(r.fire_at) +
                                 ", more than a minute in the past; reminders must be in the future"});
    }
  }
  return errs;
}

void cancel_pending(std::vector<reminder>& rs) {
  for (auto& r : rs) {
    if (r.state == "scheduled") {
      r.state = "cancelled";
    }
  }
}

void restore_cancelled(std::vector<reminder>& rs, time::ms now) {
  for (auto& r : rs) {
    if (r.state == "cancelled" && r.fire_at >= now - reminder_grace) {
      r.state = "scheduled";
    }
  }
}

std::vector<reminder> shifted(const std::vector<reminder>& rs, time::ms old_due, time::ms new_due, time::ms now) {
  std::vector<reminder> out;
  for (const auto& r : rs) {
    reminder n = r;
    n.id = uuid::v7();
    if (n.at) {
      n.at = *n.at + (new_due - old_due);
      n.fire_at = *n.at;
    } else {
      n.fire_at = new_due - n.offset;
    }
    n.state = n.fire_at < now - reminder_grace ? "cancelled" : "scheduled";
    out.push_back(std::move(n));
  }
  return out;
}

void write_reminders(json::writer& w, const std::vector<reminder>& rs) {
  w.begin_array();
  for (const auto& r : rs) {
    w.begin_object();
    w.key("id").value(r.id);
    if (r.at) {
      w.key("at").value(time::format(*r.at));
    } else {
      w.key("before").value(r.before.value_or(""));
    }
    w.key("fire_at").value(time::format(r.fire_at));
    w.key("state").value(r.state);
    w.end_object();
  }
  w.end_array();
}

std::vector<reminder> read_reminders(std::string_view stored) {
  std::vector<reminder> out;
  if (stored.empty() || stored == "[]") {
    return out;
  }
  simdjson::dom::element root;
  if (stored_parser.parse(stored.data(), stored.size()).get(root) != simdjson::SUCCESS) {
    return out;
  }
  simdjson::dom::array arr;
  if (root.get(arr) != simdjson::SUCCESS) {
    return out;
  }
  for (auto el : arr) {
    reminder r;
    std::string_view s;
    if (el["id"].get(s) == simdjson::SUCCESS) {
      r.id = std::string(s);
    }
    if (el["at"].get(s) == simdjson::SUCCESS) {
      r.at = time::parse_rfc3339(s);
    }
    if (el["before"].get(s) == simdjson::SUCCESS) {
      r.before = std::string(s);
      r.offset = parse_duration(s).value_or(milliseconds{0});
    }
    if (el["fire_at"].get(s) == simdjson::SUCCESS) {
      r.fire_at = time::parse_rfc3339(s).value_or(time::ms{});
    }
    if (el["state"].get(s) == simdjson::SUCCESS) {
      r.state = std::string(s);
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace todo::tasks
