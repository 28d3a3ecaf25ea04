-- SPDX-License-Identifier: MIT
-- wrk script: introspects the access tokens of BENCH_TOKENS_FILE (one per line) in turn,
-- authenticated with BENCH_AUTH. With many more tokens than the server's verification cache
-- has slots, nearly every request is a cache miss: signature check plus a revoked-list
-- lookup in the store. One wrk thread (-t1): one Lua state, one turn through the file.
local pool, n, i = {}, 0, 0
local auth = os.getenv("BENCH_AUTH")

init = function(args)
  for line in io.lines(os.getenv("BENCH_TOKENS_FILE")) do
    n = n + 1
    pool[n] = line
  end
end

request = function()
  i = i % n + 1
  return wrk.format("POST", "/oauth2/introspect",
                    {["Content-Type"] = "application/x-www-form-urlencoded",
                     ["Authorization"] = auth}, "token=" .. pool[i])
end

-- BENCH_DELAY_MS (optional): each connection waits this long before each request, to run
-- the reference at floodgate's rate (bench/flow_prof.py).
local pace = tonumber(os.getenv("BENCH_DELAY_MS") or "")
if pace then
  delay = function() return pace end
end
