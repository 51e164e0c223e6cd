// usage: listing_sql USER QUERY_STRING
// Prints the first-page statement of GET /api/v1/tasks?QUERY_STRING for
// USER, its parameters inlined as literals, on one line.
#include "listing.hpp"

#include "todo/http.hpp"

#include <iostream>

namespace {

std::string literal(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    out += c == '\'' ? std::string("''") : std::string(1, c);
  }
  return out + "'";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: listing_sql USER QUERY_STRING\n";
    return 2;
  }
  auto pairs = todo::http::parse_query(argv[2]);
  if (!pairs) {
    std::cerr << "malformed query string\n";
    return 2;
  }
  auto parsed = todo::tasks::listing::parse(*pairs);
  if (auto* e = std::get_if<todo::field_error>(&parsed)) {
    std::cerr << e->field << ": " << e->message << "\n";
    return 2;
  }
  const auto& f = std::get<todo::tasks::listing::filter>(parsed);
  auto q = todo::tasks::listing::page_query(f, argv[1], std::nullopt, todo::time::now());
  // Replace $N from the highest, so $1 does not match inside $10.
  std::string sql = q.text;
  for (std::size_t i = q.params.size(); i-- > 0;) {
    auto name = "$" + std::to_string(i + 1);
    auto value = q.params[i] ? literal(*q.params[i]) : std::string("NULL");
    for (auto at = sql.find(name); at != std::string::npos; at = sql.find(name, at + value.size())) {
      sql.replace(at, name.size(), value);
    }
  }
  std::cout << sql << ";\n";
  return 0;
}
