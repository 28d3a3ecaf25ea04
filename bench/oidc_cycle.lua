-- SPDX-License-Identifier: MIT
-- wrk script for the browser sign-in cycle with a live session: an authorization request
-- (GET, the session cookie) answered by a redirect carrying a code, then that code
-- exchanged at the token endpoint (a public client with PKCE). Codes pass from answers to
-- requests through one pool (one wrk thread: one Lua state). From the environment:
-- BENCH_AUTHZ (the authorize path and query), BENCH_COOKIE (session cookies separated by
-- '|', one per person signed in, used in turn), BENCH_TOKEN_BODY (the token request's body
-- without its code).
local pending, n = {}, 0
local authz, body = os.getenv("BENCH_AUTHZ"), os.getenv("BENCH_TOKEN_BODY")
local cookies, next_cookie = {}, 1 -- one session per person: taken in turn
for c in string.gmatch(os.getenv("BENCH_COOKIE"), "[^|]+") do
  cookies[#cookies + 1] = c
end

request = function()
  local code = pending[n]
  if code then
    pending[n] = nil
    n = n - 1
    return wrk.format("POST", "/oauth2/token",
                      {["Content-Type"] = "application/x-www-form-urlencoded"},
                      body .. "&code=" .. code)
  end
  local cookie = cookies[next_cookie]
  next_cookie = next_cookie % #cookies + 1
  return wrk.format("GET", authz, {["Cookie"] = cookie})
end

response = function(status, headers, body)
  local loc = headers["Location"]
  local code = loc and loc:match("code=([%w_%-]+)")
  if code then
    n = n + 1
    pending[n] = code
  end
end
