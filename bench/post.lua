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
