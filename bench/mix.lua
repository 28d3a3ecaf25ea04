-- SPDX-License-Identifier: MIT
-- wrk script: the cheap flows of the launch rehearsal's "before" phase (rehearse/launch.json:
-- introspection 500/s, verify 500/s, refresh 20/s, client_credentials 10/s), in that
-- proportion (50:50:2:1), paced to about BENCH_RATE requests/s over BENCH_CONNS connections
-- (wrk's delay() before each request), to run beside logins. Environment:
--   BENCH_AUTH    client_secret_basic header of a client (introspection, client_credentials)
--   BENCH_BEARER  an access token (verify, introspection)
--   BENCH_TOKENS_FILE  refresh tokens, one per line; they circulate as in refresh.lua
-- One wrk thread (-t1): one Lua state.
local auth = os.getenv("BENCH_AUTH")
local bearer = os.getenv("BENCH_BEARER")
local wait = tonumber(os.getenv("BENCH_CONNS") or "4") * 1000 / tonumber(os.getenv("BENCH_RATE") or "1030")
local pool, head, tail, i = {}, 1, 0, 0

init = function(args)
  for line in io.lines(os.getenv("BENCH_TOKENS_FILE")) do
    tail = tail + 1
    pool[tail] = line
  end
end

delay = function() return wait end

local form = "application/x-www-form-urlencoded"

request = function()
  i = i % 103 + 1
  if i <= 50 then
    return wrk.format("GET", "/v1/auth/verify", {["Authorization"] = "Bearer " .. bearer})
  elseif i <= 100 then
    return wrk.format("POST", "/oauth2/introspect", {["Content-Type"] = form, ["Authorization"] = auth},
                      "token=" .. bearer)
  elseif i == 103 then
    return wrk.format("POST", "/oauth2/token", {["Content-Type"] = form, ["Authorization"] = auth},
                      "grant_type=client_credentials")
  end
  local tok = pool[head] or "exhausted-pool-00000000000000000000000000000"
  pool[head] = nil
  head = head + 1
  return wrk.format("POST", "/v1/auth/refresh", {["Content-Type"] = "application/json"},
                    '{"refresh_token":"' .. tok .. '"}')
end

-- the answers by status, printed at the end ("statuses: 200=N 429=N ...")
local threads = {}
setup = function(thread) table.insert(threads, thread) end
codes = {}

response = function(status, headers, body)
  codes[status] = (codes[status] or 0) + 1
  local t = body:match('"refresh_token":"([%w_%-]+)"')
  if t then
    tail = tail + 1
    pool[tail] = t
  end
end

done = function()
  local all = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("codes")) do all[k] = (all[k] or 0) + v end
  end
  local out = {}
  for k, v in pairs(all) do table.insert(out, k .. "=" .. v) end
  table.sort(out)
  io.write("statuses: " .. table.concat(out, " ") .. "\n")
end
