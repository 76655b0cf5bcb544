-- wrk script for the availability scenario: GET /api/v1/availability with the account's key
-- and `skus` random SKUs of the read model per request; done() prints the summary line that
-- bench/harness/wrk.py parses (the same format as sign.lua's).
-- Arguments after `--`: the API key, the number of SKUs in the read model, SKUs per request.

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

function done(summary, latency, requests)
  local p = {}
  for _, q in ipairs({ 50, 90, 99, 99.9 }) do
    p[#p + 1] = string.format('"p%s": %d', tostring(q), latency:percentile(q))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_WRK_JSON {"duration_us": %d, "requests": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {%s, "max": %d, "mean": %.1f}}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    table.concat(p, ", "), latency.max, latency.mean))
end
