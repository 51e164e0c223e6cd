-- POST /api/v1/tasks/{id}/complete, each id of BENCH_IDS once per thread
-- share (ids are split between wrk's threads).
local token = os.getenv("BENCH_TOKEN")
local path = os.getenv("BENCH_IDS")
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end

function init(args)
  ids = {}
  local i = 0
  for line in io.lines(path) do
    if i % 2 == tid then
      ids[#ids + 1] = line
    end
    i = i + 1
  end
  n = 0
end

function request()
  n = n + 1
  if n > #ids then
    n = 1  -- past the end: completing again is a no-op 200
  end
  return wrk.format("POST", "/api/v1/tasks/" .. ids[n] .. "/complete", {["Authorization"] = "Bearer " .. token})
end
