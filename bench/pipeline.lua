-- SPDX-License-Identifier: MIT
-- wrk script: sends requests in batches of `depth` (default 16) pipelined on each connection.
-- Usage: wrk -s bench/pipeline.lua URL -- 16
local depth = 16
init = function(args)
  depth = tonumber(args[1]) or 16
  local r = {}
  for i = 1, depth do
    r[i] = wrk.format(nil, nil)
  end
  req = table.concat(r)
end
request = function()
  return req
end
