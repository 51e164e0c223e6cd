#include "settings.hpp"

#include "validate.hpp"

#include "todo/json.hpp"
#include "todo/json_parse.hpp"

#include <algorithm>

namespace todo::tasks {
namespace {

constexpr std::size_t max_email = 254;
constexpr std::size_t min_secret = 16;
constexpr std::size_t max_secret = 512;

bool printable_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

// Sets `out` to the member's string, or to nullopt for null; false (with an
// error listed) for any other type.
bool string_or_null(const simdjson::dom::element& v, const std::string& name, field_errors& errs,
                    std::optional<std::string>& out) {
  if (v.is_null()) {
    out.reset();
    return true;
  }
  std::string_view s;
  if (v.get(s) != simdjson::SUCCESS) {
    errs.push_back({name, "must be a string or null, not " + std::string(json::type_name(v))});
    return false;
  }
  out = std::string(s);
  return true;
}

}  // namespace

std::string check_email(std::string_view email) {
  if (email.size() > max_email) {
    return "must be at most 254 characters";
  }
  auto at = email.rfind('@');
  if (!printable_ascii(email) || at == std::string_view::npos || at == 0 || at > 64 ||
      email.find('@') != at) {
    return "must be an e-mail address such as name@example.com";
  }
  auto domain = email.substr(at + 1);
  if (domain.size() < 3 || domain.find('.') == std::string_view::npos || domain.front() == '.' ||
      domain.back() == '.' || domain.find("..") != std::string_view::npos) {
    return "must be an e-mail address such as name@example.com";
  }
  return {};
}

std::string check_webhook_secret(std::string_view secret) {
  if (secret.size() < min_secret || secret.size() > max_secret) {
    return "must be 16 to 512 characters";
  }
  if (!printable_ascii(secret)) {
    return "must be printable ASCII without spaces";
  }
  return {};
}

parsed_settings parse_settings_body(std::string_view body, bool allow_insecure) {
  parsed_settings out;
  auto parsed = json::parse_object(body);
  out.bad_request = std::move(parsed.error);
  out.errors = std::move(parsed.errors);
  if (!parsed.object) {
    return out;
  }
  auto& errs = out.errors;
  auto& p = out.patch;
  for (const auto& [key, member] : parsed.members) {
    std::string name(key);
    std::optional<std::string> value;
    if (name == "timezone") {
      if (string_or_null(member, name, errs, value)) {
        if (value && !valid_timezone(*value)) {
          errs.push_back({name, "must be an IANA time zone name such as Europe/Berlin"});
        } else {
          p.timezone = value.value_or("UTC");
        }
      }
    } else if (name == "email") {
      if (string_or_null(member, name, errs, value)) {
        if (auto m = value ? check_email(*value) : std::string{}; !m.empty()) {
          errs.push_back({name, m});
        } else {
          p.email = std::move(value);
        }
      }
    } else if (name == "webhook_url") {
      if (string_or_null(member, name, errs, value)) {
        if (!value) {
          p.webhook_url = std::optional<std::string>{};
        } else {
          auto t = webhook::parse_url(*value, allow_insecure);
          if (auto* m = std::get_if<std::string>(&t)) {
            errs.push_back({name, *m});
          } else {
            p.webhook_url = std::move(value);
            p.webhook_target = std::get<webhook::target>(std::move(t));
          }
        }
      }
    } else if (name == "webhook_secret") {
      if (string_or_null(member, name, errs, value)) {
        if (auto m = value ? check_webhook_secret(*value) : std::string{}; !m.empty()) {
          errs.push_back({name, m});
        } else {
          p.webhook_secret = std::move(value);
        }
      }
    } else if (name == "webhook_secret_set") {
      errs.push_back({name, "is set by sending webhook_secret"});
    } else {
      errs.push_back({name, "is not a settings field"});
    }
  }
  return out;
}

std::string to_json(const settings& s) {
  json::writer w;
  w.begin_object().key("timezone").value(s.timezone).key("email");
  s.email ? w.value(*s.email) : w.null();
  w.key("webhook_url");
  s.webhook_url ? w.value(*s.webhook_url) : w.null();
  w.key("webhook_secret_set").value(s.webhook_secret_set).end_object();
  return w.take();
}

}  // namespace todo::tasks
