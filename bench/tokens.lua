-- Shared by the wrk scripts: tokens for many users (rate limits are per
-- user), read from the file bench/run.sh writes.
local M = {}
function M.load(path)
  local tokens = {}
  for line in io.lines(path) do
    tokens[#tokens + 1] = line
  end
  return tokens
end
return M
