-- SPDX-License-Identifier: MIT
-- wrk script: GET with an Authorization header from BENCH_AUTH.
wrk.headers["Authorization"] = os.getenv("BENCH_AUTH") or ""
