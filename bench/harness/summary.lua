-- The summary line every bench wrk script prints: done() writes one line
-- "BENCH_WRK_JSON {...}" with the counts and latency percentiles, which bench/harness/wrk.py
-- parses. A script loads it with `dofile(<its own folder> .. "summary.lua")`.

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
