-- SPDX-License-Identifier: MIT
-- wrk script: password logins of the users BENCH_USER_PREFIX0 .. BENCH_USER_PREFIX<N-1>
-- (N = BENCH_USERS; with BENCH_USER_STEP = S, the users 0, S, 2S, ...: spread over a large
-- table), each with the password BENCH_PASSWORD, in turn: one login per user in
-- flight at a time (floodgate answers a second one for the same user 429 while the first
-- is hashed), as a crowd of different users signs in.
local n = tonumber(os.getenv("BENCH_USERS") or "1")
local prefix = os.getenv("BENCH_USER_PREFIX") or "u"
local pw = os.getenv("BENCH_PASSWORD") or ""
local step = tonumber(os.getenv("BENCH_USER_STEP") or "1")
local i = 0

request = function()
  i = i % n + 1
  local body = string.format('{"username":"%s%d","password":"%s"}', prefix, (i - 1) * step, pw)
  return wrk.format("POST", "/v1/auth/login", {["Content-Type"] = "application/json"}, body)
end

-- the answers by status, printed at the end ("statuses: 200=N 429=N ...")
local threads = {}
setup = function(thread) table.insert(threads, thread) end
codes = {}
response = function(status) codes[status] = (codes[status] or 0) + 1 end
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
