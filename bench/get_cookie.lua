-- SPDX-License-Identifier: MIT
-- wrk script: GET with a Cookie header from BENCH_COOKIE (none if empty).
local c = os.getenv("BENCH_COOKIE")
if c and c ~= "" then
  wrk.headers["Cookie"] = c
end
