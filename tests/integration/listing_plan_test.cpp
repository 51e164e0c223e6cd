// Every listing shape reads the tasks table through an index, never a
// sequential scan, and the main orders walk an index without sorting. The
// statements are the ones the server builds (listing::page_query), planned
// by the real PostgreSQL with real data and statistics.
#include "listing.hpp"
#include "pg_fixture.hpp"

#include <catch2/catch.hpp>

using namespace todo;
namespace asio = boost::asio;
namespace listing = todo::tasks::listing;

namespace {

using params = std::vector<std::pair<std::string, std::string>>;

// 1,000 users with 60 tasks each, and one user with 6,000, across the
// priorities, tags, due dates and words the shapes filter on.
const db::statement fill{
    "it_plan_fill",
    "INSERT INTO tasks (id, user_id, title, description, completed, priority, tags, due_at, created_at, updated_at)"
    " SELECT gen_random_uuid(), CASE WHEN g <= 6000 THEN $1 ELSE $1 || '-' || (g % 1000) END,"
    "  'task ' || (ARRAY['plants','report','garden','taxes','call'])[1 + g % 5] || ' ' || g,"
    "  'some words', g % 7 = 0, g % 5,"
    "  ARRAY['t' || (g % 40), 'u' || (g % 3)],"
    "  CASE WHEN g % 4 = 0 THEN NULL ELSE now() + (g % 1000) * interval '1 hour' END, now(), now()"
    " FROM generate_series(1, 66000) g"};
const db::statement analyze{"it_plan_analyze", "ANALYZE tasks"};

asio::awaitable<boost::system::result<db::rows>> run_one(db::pool& p, db::query q) {
  co_return co_await p.execute_one(std::move(q));
}

listing::filter parsed(const params& ps) {
  auto r = listing::parse(ps);
  REQUIRE(std::holds_alternative<listing::filter>(r));
  return std::get<listing::filter>(r);
}

std::string plan(test::pg_fixture& fx, db::query q) {
  q.text = "EXPLAIN " + q.text;
  auto r = test::run(fx.io, run_one(*fx.pool, std::move(q)));
  REQUIRE(r.has_value());
  std::string out;
  for (int i = 0; i < r->size(); ++i) {
    out += std::string(r->text(i, 0)) + "\n";
  }
  return out;
}

// A position inside the walk, as a cursor would carry it.
listing::position middle(const listing::filter& f) {
  listing::position p;
  p.id = "01900000-0000-7000-8000-000000000000";
  for (std::size_t i = 0; i < listing::key_count(f); ++i) {
    p.keys.emplace_back("0");
  }
  for (std::size_t i = 0; i < f.sort.size(); ++i) {
    switch (f.sort[i].key) {
      case listing::sort_key::due_at:
      case listing::sort_key::created_at:
      case listing::sort_key::updated_at: p.keys[i] = "2026-06-01 00:00:00+00"; break;
      case listing::sort_key::priority: p.keys[i] = "-2"; break;
      case listing::sort_key::title: p.keys[i] = "task m"; break;
    }
  }
  return p;
}

}  // namespace

TEST_CASE("listing plans: index scans for every shape, no sort for the main orders", "[listing][plan]") {
  // Filling 66,000 rows can outlast the default statement timeout while
  // other suites load the same machine.
  db::pool_options slow;
  slow.statement_timeout = std::chrono::seconds(120);
  test::pg_fixture fx(slow);
  const auto user = test::pg_fixture::fresh_user();
  {
    db::query q{&fill, {user}};
    REQUIRE(test::run(fx.io, run_one(*fx.pool, std::move(q))).has_value());
    db::query a{&analyze, {}};
    REQUIRE(test::run(fx.io, run_one(*fx.pool, std::move(a))).has_value());
  }
  const auto now = time::now();

  // The main orders are one index range each; every shape reads the tasks
  // table through an index.
  struct shape {
    params ps;
    bool index_range;
  };
  const std::vector<shape> shapes{
      {{}, true},
      {{{"sort", "due_at"}}, true},
      {{{"sort", "-priority,due_at"}}, true},
      {{{"status", "all"}}, false},
      {{{"status", "completed"}, {"sort", "-updated_at"}}, false},
      {{{"tag", "t7"}}, false},
      {{{"tag", "t7"}, {"tag", "u1"}, {"sort", "-priority,due_at"}}, false},
      {{{"any_tag", "t1,t2,t3"}}, false},
      {{{"priority", "high,urgent"}, {"sort", "due_at"}}, false},
      {{{"q", "plan"}}, false},
      {{{"q", "garden task"}, {"sort", "title"}}, false},
      {{{"overdue", "true"}}, false},
      {{{"due_after", "2026-01-01T00:00:00Z"}, {"due_before", "2027-01-01T00:00:00Z"}, {"sort", "-due_at"}}, false},
      {{{"sort", "title,-created_at"}}, false},
  };
  for (const auto& [ps, index_range] : shapes) {
    auto f = parsed(ps);
    for (bool second_page : {false, true}) {
      std::optional<listing::position> after;
      if (second_page) {
        after = middle(f);
      }
      auto p = plan(fx, listing::page_query(f, user, after, now));
      std::string name = ps.empty() ? "default order " : "";
      for (const auto& [k, v] : ps) {
        name += k + "=" + v + " ";
      }
      INFO(name << (second_page ? "(second page)" : "(first page)") << "\n" << p);
      CHECK(p.find("Seq Scan") == std::string::npos);
      CHECK(p.find(" on tasks") != std::string::npos);
      if (index_range) {
        CHECK(p.find("Sort") == std::string::npos);
        CHECK(p.find("Index Scan") != std::string::npos);
      }
      // Sorted by the values, never by their text (k0, k1 are the cursor's copies).
      auto sort_key = p.find("Sort Key:");
      CHECK((sort_key == std::string::npos || p.find("::text", sort_key) > p.find('\n', sort_key)));
    }
  }
}
