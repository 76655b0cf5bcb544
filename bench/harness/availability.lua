-- wrk script for the availability scenario: GET /api/v1/availability with the account's key
-- and `skus` random SKUs of the read model per request; done() (summary.lua) prints the
-- summary line that bench/harness/wrk.py parses.
-- Arguments after `--`: the API key, the number of SKUs in the read model, SKUs per request.

dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "summary.lua")

local headers = {}
local skus_total, per_request

function init(args)
  headers["x-api-key"] = args[1]
  skus_total = tonumber(args[2])
  per_request = tonumber(args[3])
  math.randomseed(thread_number or os.time())
end

function request()
  local parts = {}
  for i = 1, per_request do
    parts[i] = string.format("sku=SKU-%06d", math.random(0, skus_total - 1))
  end
  return wrk.format("GET", "/api/v1/availability?" .. table.concat(parts, "&"), headers)
end
