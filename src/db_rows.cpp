#include "todo/db.hpp"

#include <libpq-fe.h>

#include <charconv>
#include <stdexcept>

namespace todo::db {
namespace {

class category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "todo.db"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::unavailable: return "database unavailable";
      case errc::timeout: return "database timeout";
      case errc::unique_violation: return "unique violation";
      case errc::serialization: return "serialization failure";
      case errc::failed: return "database error";
    }
    return "unknown";
  }
};

}  // namespace

std::string array_literal(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    out += i == 0 ? "\"" : ",\"";
    for (char c : items[i]) {
      if (c == '"' || c == '\\') {
        out += '\\';
      }
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

const boost::system::error_category& category() noexcept {
  static const category_impl instance;
  return instance;
}

boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), category()};
}

rows::rows() : r_(nullptr) {}
rows::rows(pg_result* r) : r_(r) {}
rows::rows(rows&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
rows& rows::operator=(rows&& o) noexcept {
  if (this != &o) {
    if (r_ != nullptr) {
      PQclear(r_);
    }
    r_ = o.r_;
    o.r_ = nullptr;
  }
  return *this;
}
rows::~rows() {
  if (r_ != nullptr) {
    PQclear(r_);
  }
}

int rows::size() const { return r_ == nullptr ? 0 : PQntuples(r_); }

bool rows::is_null(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }

std::string_view rows::text(int row, int col) const {
  return {PQgetvalue(r_, row, col), static_cast<std::size_t>(PQgetlength(r_, row, col))};
}

std::int64_t rows::integer(int row, int col) const {
  auto t = text(row, col);
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc{} || p != t.data() + t.size()) {
    throw std::runtime_error("column is not an integer");
  }
  return v;
}

bool rows::boolean(int row, int col) const { return text(row, col) == "t"; }

std::int64_t rows::affected() const {
  const char* n = r_ == nullptr ? "" : PQcmdTuples(r_);
  std::int64_t v = 0;
  std::from_chars(n, n + std::char_traits<char>::length(n), v);
  return v;
}

}  // namespace todo::db
