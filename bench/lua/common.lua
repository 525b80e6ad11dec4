-- Shared by every scenario (bench/wrk.py puts it in front of the scenario's script).
-- Environment: BENCH_RESULT (the JSON file done() writes), BENCH_DATA (the scenario's lines),
-- BENCH_THREADS (wrk's -t).
-- Each thread keeps a pool of its own lines of the data file: thread k of n takes lines k, k+n,
-- k+2n... so no two threads (and, for refresh, no two connections) ever share a line.

local threads = {}
local thread_count = 0
thread_total = tonumber(os.getenv("BENCH_THREADS"))

function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

function bench_read_lines(path)
  local lines, i = {}, 0
  for line in io.lines(path) do
    if i % thread_total == thread_index then
      table.insert(lines, line)
    end
    i = i + 1
  end
  return lines
end

function init(args)
  non2xx = 0
  status_503 = 0
  backoff = 0
  scenario_init(os.getenv("BENCH_DATA"))
end

-- A client that honours Retry-After: after a 503 the next request of this thread waits.
function delay()
  if backoff > 0 then
    backoff = backoff - 1
    return 1000
  end
  return 0
end

function bench_count(status, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if first_error == nil then
      first_error = status .. " " .. string.sub(body or "", 1, 200)
    end
    if status == 503 then
      status_503 = status_503 + 1
      backoff = backoff + 1
    end
  end
end

function done(summary, latency, requests)
  local non2xx_total, total_503, sample = 0, 0, ""
  for _, thread in ipairs(threads) do
    sample = thread:get("first_error") or sample
    non2xx_total = non2xx_total + (thread:get("non2xx") or 0)
    total_503 = total_503 + (thread:get("status_503") or 0)
  end
  local e = summary.errors
  local out = io.open(os.getenv("BENCH_RESULT"), "w")
  out:write(string.format(
    '{"requests": %d, "duration_us": %d, "non2xx": %d, "status_503": %d, '
      .. '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, '
      .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, '
      .. '"sample_error": "%s"}\n',
    summary.requests, summary.duration, non2xx_total, total_503,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, sample:gsub('[%c\\"]', "'")))
  out:close()
end
