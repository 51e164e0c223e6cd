-- GET /api/v1/tasks/{id} of one task (the same row pgbench reads).
local token = os.getenv("BENCH_READ_TOKEN")
local path = "/api/v1/tasks/" .. os.getenv("BENCH_READ_ID")
request = function()
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. token})
end
