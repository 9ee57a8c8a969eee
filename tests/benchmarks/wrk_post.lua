-- wrk script for bench_serving.py: POST the JSON body in $WRK_BODY_FILE, then print one line
-- "WRK_JSON {...}" with requests/s, latency percentiles (ms) and error counts.
-- wrk counts a response with status > 399 under errors.status.
local f = assert(io.open(os.getenv("WRK_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
   local e = summary.errors
   local function ms(us) return us / 1000.0 end
   io.write(string.format(
      'WRK_JSON {"requests": %d, "duration_s": %.6f, "rps": %.3f, "p50_ms": %.4f, "p90_ms": %.4f, "p99_ms": %.4f, ' ..
      '"mean_ms": %.4f, "max_ms": %.4f, "errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d, "status": %d}}\n',
      summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
      ms(latency:percentile(50)), ms(latency:percentile(90)), ms(latency:percentile(99)),
      ms(latency.mean), ms(latency.max), e.connect, e.read, e.write, e.timeout, e.status))
end
