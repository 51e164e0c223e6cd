#include "todo/errors.hpp"

#include <array>

namespace todo {
namespace {

constexpr std::array<problem_kind, 12> kinds{{
    {400, "bad-request", "Bad request"},
    {401, "unauthorized", "Authentication required"},
    {404, "not-found", "Not found"},
    {405, "method-not-allowed", "Method not allowed"},
    {409, "conflict", "Conflict"},
    {412, "precondition-failed", "Precondition failed"},
    {413, "payload-too-large", "Payload too large"},
    {415, "unsupported-media-type", "Unsupported media type"},
    {422, "validation", "Invalid request body"},
    {429, "rate-limited", "Too many requests"},
    {503, "unavailable", "Service unavailable"},
    {500, "internal", "Internal server error"},
}};

class category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "todo"; }
  std::string message(int ev) const override {
    if (ev < 1 || ev > static_cast<int>(kinds.size())) {
      return "unknown";
    }
    return std::string(kinds[static_cast<std::size_t>(ev - 1)].title);
  }
};

}  // namespace

const boost::system::error_category& category() noexcept {
  static const category_impl instance;
  return instance;
}

boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), category()};
}

const problem_kind& describe(errc e) noexcept {
  auto i = static_cast<std::size_t>(e) - 1;
  return i < kinds.size() ? kinds[i] : kinds.back();
}

}  // namespace todo
