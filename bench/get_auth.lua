-- SPDX-License-Identifier: MIT
-- wrk script: GET with an Authorization header from BENCH_AUTH.
wrk.headers["Authorization"] = os.getenv("BENCH_AUTH") or ""
-- BENCH_DELAY_MS (optional): each connection waits this long before each request, to run
-- a reference at another server's rate (bench/flow_prof.py).
local pace = tonumber(os.getenv("BENCH_DELAY_MS") or "")
if pace then
  function delay() return pace end
end
