-- SPDX-License-Identifier: MIT
-- wrk script: POSTs a fixed form body with fixed headers, from environment variables:
--   BENCH_BODY (the body), BENCH_AUTH (an Authorization header value, optional),
--   BENCH_CTYPE (Content-Type, default application/x-www-form-urlencoded).
-- Non-2xx answers are counted by wrk itself.
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or ""
wrk.headers["Content-Type"] = os.getenv("BENCH_CTYPE") or "application/x-www-form-urlencoded"
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end
-- BENCH_DELAY_MS (optional): each connection waits this long before each request, to run
-- a reference at another server's rate (bench/flow_prof.py).
local pace = tonumber(os.getenv("BENCH_DELAY_MS") or "")
if pace then
  function delay() return pace end
end
