#pragma once
// The user's settings: where reminders go and the user's own zone. Pure:
// the body of PATCH /api/v1/settings to a typed patch, and the answer.
#include "todo/errors.hpp"
#include "todo/webhook_target.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace todo::tasks {

struct settings {
  std::string timezone = "UTC";
  std::optional<std::string> email;
  std::optional<std::string> webhook_url;
  bool webhook_secret_set = false;
};

// For each member: nullopt = absent; a present nullopt (or "UTC" for
// timezone) = cleared by null (RFC 7396).
struct settings_patch {
  std::optional<std::string> timezone;
  std::optional<std::optional<std::string>> email;
  std::optional<std::optional<std::string>> webhook_url;
  std::optional<webhook::target> webhook_target;  // parsed webhook_url, to be resolved and checked
  std::optional<std::optional<std::string>> webhook_secret;
};

struct parsed_settings {
  settings_patch patch;
  field_errors errors;      // 422
  std::string bad_request;  // 400
};

// `allow_insecure`: WEBHOOK_ALLOW_INSECURE (http:// targets).
parsed_settings parse_settings_body(std::string_view body, bool allow_insecure);

std::string check_email(std::string_view email);
std::string check_webhook_secret(std::string_view secret);

std::string to_json(const settings& s);

}  // namespace todo::tasks
