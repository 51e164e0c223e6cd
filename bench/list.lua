-- GET /api/v1/tasks?<BENCH_LIST_QUERY> as the user that owns 100,000 tasks.
local token = os.getenv("BENCH_LIST_TOKEN")
local path = "/api/v1/tasks?" .. os.getenv("BENCH_LIST_QUERY")
request = function()
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. token})
end
