-- SPDX-License-Identifier: MIT
-- wrk script for refresh rotation: each refresh spends a token and its answer carries the
-- successor, so tokens circulate through a pool seeded from BENCH_TOKENS_FILE (one refresh
-- token per line, at least as many as connections). One wrk thread (-t1): one Lua state, so
-- the pool is shared by all connections. A request whose token was lost (an error answer)
-- shrinks the pool; wrk counts the non-2xx.
local pool, head, tail = {}, 1, 0

init = function(args)
  for line in io.lines(os.getenv("BENCH_TOKENS_FILE")) do
    tail = tail + 1
    pool[tail] = line
  end
end

request = function()
  local tok = pool[head]
  if tok == nil then
    tok = "exhausted-pool-00000000000000000000000000000"
  else
    pool[head] = nil
    head = head + 1
  end
  return wrk.format("POST", "/v1/auth/refresh", {["Content-Type"] = "application/json"},
                    '{"refresh_token":"' .. tok .. '"}')
end

response = function(status, headers, body)
  local t = body:match('"refresh_token":"([%w_%-]+)"')
  if t then
    tail = tail + 1
    pool[tail] = t
  end
end
