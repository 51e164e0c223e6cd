// Array parameters in PostgreSQL's text form. Pure.
#include "todo/db.hpp"

#include <catch2/catch.hpp>

TEST_CASE("array literals quote every element and escape quotes and backslashes", "[db]") {
  using todo::db::array_literal;
  CHECK(array_literal({}) == "{}");
  CHECK(array_literal({"home", "a/b:c"}) == R"({"home","a/b:c"})");
  CHECK(array_literal({""}) == R"({""})");
  CHECK(array_literal({"12", "-3"}) == R"({"12","-3"})");
  CHECK(array_literal({R"(say "hi")", R"(C:\dir)", "a,b}{", "NULL"}) ==
        R"({"say \"hi\"","C:\\dir","a,b}{","NULL"})");
}
