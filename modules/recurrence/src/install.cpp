// The recurrence module's part in the app: the rules the tasks module asks
// for (validation and next dates), backed by the engine of this module.
#include "recurrence/recurrence.hpp"

#include "todo/app.hpp"
#include "todo/recurrence_rules.hpp"


namespace todo::recurrence {
namespace {

using std::chrono::floor;
using std::chrono::seconds;

todo::recurrence_problem to_problem(const rule_error& e) { return {e.part, e.message}; }

class engine_rules final : public todo::recurrence_rules {
 public:
  std::variant<std::string, todo::recurrence_problem> parse(std::string_view rrule) const override {
    auto r = parse_rule(rrule);
    if (!r) {
      return to_problem(r.error());
    }
    return r->text();
  }

  std::variant<std::string, todo::recurrence_problem> shorthand(std::string_view every,
                                                                std::int64_t interval) const override {
    auto r = from_shorthand(every, interval);
    if (!r) {
      return to_problem(r.error());
    }
    return r->text();
  }

  std::optional<todo::recurrence_problem> check(std::string_view rrule, std::string_view zone,
                                                time::ms due_at) const override {
    auto r = parse_rule(rrule);
    if (!r) {
      return to_problem(r.error());
    }
    if (auto e = check_series(*r, zone, floor<seconds>(due_at))) {
      return to_problem(*e);
    }
    return std::nullopt;
  }

  std::optional<time::ms> next(std::string_view rrule, std::string_view zone, time::ms start,
                               time::ms after) const override {
    auto r = parse_rule(rrule);
    if (!r) {
      return std::nullopt;
    }
    auto date = next_occurrence(*r, zone, floor<seconds>(start), floor<seconds>(after));
    if (!date) {
      return std::nullopt;
    }
    return std::chrono::time_point_cast<std::chrono::milliseconds>(*date);
  }
};

}  // namespace

std::shared_ptr<const todo::recurrence_rules> make_rules() { return std::make_shared<const engine_rules>(); }

void install(todo::app& a) { a.recurrence = make_rules(); }

}  // namespace todo::recurrence
