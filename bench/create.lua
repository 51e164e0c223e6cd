-- POST /api/v1/tasks with a small realistic body, rotating users.
package.path = package.path .. ";" .. os.getenv("BENCH_DIR") .. "/?.lua"
local tokens = require("tokens").load(os.getenv("BENCH_TOKENS"))
local n = 0
local body = '{"title":"Water the plants","priority":"high","tags":["home","weekly"],"due_at":"2026-03-02T17:00:00Z"}'
request = function()
  n = n + 1
  local t = tokens[(n % #tokens) + 1]
  return wrk.format("POST", "/api/v1/tasks",
    {["Authorization"] = "Bearer " .. t, ["Content-Type"] = "application/json"}, body)
end
