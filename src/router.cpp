#include "todo/router.hpp"

#include <algorithm>
#include <stdexcept>

namespace todo {
namespace {

std::vector<std::string_view> split(std::string_view path) {
  std::vector<std::string_view> out;
  if (path.empty() || path.front() != '/') {
    return out;
  }
  path.remove_prefix(1);
  for (;;) {
    auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) {
      break;
    }
    path.remove_prefix(slash + 1);
  }
  return out;
}

bool is_param(std::string_view seg) { return seg.size() > 2 && seg.front() == '{' && seg.back() == '}'; }

}  // namespace

std::string_view to_string(access a) {
  switch (a) {
    case access::public_: return "public";
    case access::user: return "user";
    case access::ops: return "ops";
    case access::sidecar: return "sidecar";
  }
  return "unknown";
}

std::string_view request_context::param(std::string_view name) const {
  for (const auto& [k, v] : params) {
    if (k == name) {
      return v;
    }
  }
  return {};
}

void router::add(http::method m, std::string_view pattern, handler h, access a) {
  route r{m, std::string(pattern), {}, std::move(h), a};
  for (auto seg : split(pattern)) {
    r.segments.emplace_back(seg);
  }
  if (r.segments.empty()) {
    throw std::logic_error("route pattern must start with '/'");
  }
  routes_.push_back(std::move(r));
}

router::match router::find(http::method m, std::string_view path) const {
  match out;
  auto segs = split(path);
  std::vector<std::string_view> allowed;
  for (const auto& r : routes_) {
    if (r.segments.size() != segs.size()) {
      continue;
    }
    std::vector<std::pair<std::string, std::string>> params;
    bool ok = true;
    for (std::size_t i = 0; i < segs.size() && ok; ++i) {
      const auto& want = r.segments[i];
      if (is_param(want)) {
        auto decoded = http::percent_decode(segs[i], false);
        ok = decoded.has_value() && !decoded->empty();
        if (ok) {
          params.emplace_back(want.substr(1, want.size() - 2), std::move(*decoded));
        }
      } else {
        ok = want == segs[i];
      }
    }
    if (!ok) {
      continue;
    }
    bool head_on_get = m == http::method::head && r.verb == http::method::get;
    if (r.verb == m || head_on_get) {
      out.r = &r;
      out.params = std::move(params);
      return out;
    }
    allowed.push_back(to_string(r.verb));
    if (r.verb == http::method::get) {
      allowed.push_back("HEAD");
    }
  }
  std::sort(allowed.begin(), allowed.end());
  allowed.erase(std::unique(allowed.begin(), allowed.end()), allowed.end());
  for (auto a : allowed) {
    if (!out.allow.empty()) {
      out.allow += ", ";
    }
    out.allow += a;
  }
  return out;
}

}  // namespace todo
