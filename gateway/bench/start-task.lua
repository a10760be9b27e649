-- wrk script: Start Task (POST /genesys/1/cs/services/{id}/tasks/start) against the task core.
--
--   wrk -t1 -c8 -d10s --latency -s gateway/bench/start-task.lua \
--       http://127.0.0.1:PORT/genesys/1/cs/services/1/tasks/start
--
-- Every request carries the same realistic Start Task body (standard fields of the contract
-- plus a few extensions). wrk itself only counts 4xx/5xx as errors and would happily report a
-- run of fast 400s as a great result, so this script counts every answer that is not a 201 by
-- status code and prints everything in one machine-readable line at the end:
--
--   BENCH requests=N ok201=N non201=N rps=R p50_us=N p99_us=N p999_us=N max_us=N statuses=201:N,…
--         connect_errors=N read_errors=N write_errors=N timeouts=N duration_us=N
--
-- Latencies are wrk's, in microseconds. Mind that wrk 4.x corrects its latency histogram for
-- coordinated omission before done() sees it (stats_correct in wrk.c): a response that took
-- S while the average round trip per connection was E adds S/E - 1 synthetic samples at
-- S-E, S-2E, … — what a client sending at a constant rate would have waited. So p99 and
-- p99.9 from latency:percentile() are those corrected figures, and one 100 ms stall in a
-- 10 s run at 1 connection can move p99 to tens of milliseconds. latency.max is untouched by
-- the correction: the slowest single response really seen.

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"task_type":"VoiceInbound",'
  .. '"interaction_id":"00AG6F0Q8S9AH5BQ1C00004VMD",'
  .. '"timestamp":"2025-11-25T10:18:00.000Z",'
  .. '"media_type":"voice",'
  .. '"est_duration":300,'
  .. '"language":"en-US",'
  .. '"queue":"billing-tier2",'
  .. '"priority":3}'

-- One Lua state per wrk thread: keep them to add their counters up in done().
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok201 = 0
  non201 = 0
  statuses = {}
  first_bad = ""
end

function response(status, headers, body)
  if status == 201 then
    ok201 = ok201 + 1
  else
    non201 = non201 + 1
    if first_bad == "" then
      first_bad = status .. " " .. (body or ""):sub(1, 200)
    end
  end
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local ok, bad, by_status, first = 0, 0, {}, ""
  for _, t in ipairs(threads) do
    ok = ok + t:get("ok201")
    bad = bad + t:get("non201")
    for code, n in pairs(t:get("statuses")) do
      by_status[code] = (by_status[code] or 0) + n
    end
    if first == "" then first = t:get("first_bad") end
  end
  local codes = {}
  for code, _ in pairs(by_status) do table.insert(codes, code) end
  table.sort(codes)
  local parts = {}
  for _, code in ipairs(codes) do table.insert(parts, code .. ":" .. by_status[code]) end

  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d ok201=%d non201=%d rps=%.1f p50_us=%d p99_us=%d p999_us=%d max_us=%d statuses=%s "
      .. "connect_errors=%d read_errors=%d write_errors=%d timeouts=%d duration_us=%d\n",
    summary.requests, ok, bad, summary.requests / seconds,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max,
    (#parts > 0) and table.concat(parts, ",") or "none",
    e.connect, e.read, e.write, e.timeout, summary.duration))
  if bad > 0 then
    io.write("BENCH first non-201: " .. (first:gsub("\n", " ")) .. "\n")
  end
end
