-- SPDX-License-Identifier: MIT
-- wrk script for refresh rotation: each refresh spends a token and its answer carries the
-- successor, so tokens circulate. The tokens of BENCH_TOKENS_FILE (one refresh token per
-- line, at least as many as connections) are presented first, in order, read as they are
-- needed; then the successors, oldest first. One wrk thread (-t1): one Lua state, so the
-- tokens are shared by all connections. A request whose token was lost (an error answer)
-- shrinks the pool; wrk counts the non-2xx.
--
-- The successors wait in a ring of RING slots: past that many unpresented, the oldest is
-- forgotten (it stays live in the store, unused). So the client's memory, and the time its
-- garbage collector takes, do not grow with the file or the run: a file of 9,000,000 tokens
-- held in a table cost wrk a tenth of its rate and pauses of up to 4 s (docs/benchmarks.md),
-- which a benchmark of a large store would have charged to the server.
local RING = 262144
local ring, head, tail = {}, 0, 0 -- successors at [head, tail), indices mod RING
local file

init = function(args)
  file = io.lines(os.getenv("BENCH_TOKENS_FILE"))
end

local function next_token()
  if file then
    local line = file()
    if line then
      return line
    end
    file = nil
  end
  if head == tail then
    return nil
  end
  local tok = ring[head % RING]
  ring[head % RING] = false
  head = head + 1
  return tok
end

request = function()
  local tok = next_token() or "exhausted-pool-00000000000000000000000000000"
  return wrk.format("POST", "/v1/auth/refresh", {["Content-Type"] = "application/json"},
                    '{"refresh_token":"' .. tok .. '"}')
end

response = function(status, headers, body)
  local t = body:match('"refresh_token":"([%w_%-]+)"')
  if t then
    if tail - head == RING then
      head = head + 1 -- (the oldest is overwritten below)
    end
    ring[tail % RING] = t
    tail = tail + 1
  end
end
