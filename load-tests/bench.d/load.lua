-- wrk script for load-tests/bench: sends pre-signed, pre-formatted requests.
--
--   wrk -t T -c C -d D -s load.lua URL -- DATA_DIR RECORD_BYTES RATE OK_FILE T
--
-- DATA_DIR holds reqs.0 … reqs.<T-1>, one per wrk thread, written by
-- gen.py: each is a run of raw HTTP requests of exactly RECORD_BYTES bytes, so a
-- thread reads the next request with one buffered read and spends no CPU on
-- HMAC or formatting. A thread that reaches the end of its file starts over;
-- every request sent past the end is a repeat, counted and reported (payhook
-- answers an exact repeat 200 without storing it, so repeats flatter the rate).
--
-- RATE > 0 paces the run to about RATE requests/s in total (see delay below);
-- 0 sends as fast as the server answers.
--
-- response() keeps the x-request-id of every 2xx (the id names the delivery),
-- and done() writes them to OK_FILE so the exactly-once check knows which
-- deliveries were acknowledged. The same script drives the bare handler, so
-- both sides of the ratio pay the same load-generator cost.
--
-- done() prints one line starting with "BENCH " that load-tests/bench parses.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("bench_timespec")

local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) * 1000000 + tonumber(timespec.tv_nsec) / 1000
end

-- Main state: number the threads so each reads its own file.
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

-- Thread state. The globals are what done() reads with thread:get.
local file, record_bytes
sent, twoxx, ok_count, ok = 0, 0, 0, {}

function init(args)
  local dir = args[1]
  record_bytes = tonumber(args[2])
  local rate = tonumber(args[3])
  ok_file = args[4]
  file = assert(io.open(dir .. "/reqs." .. id, "rb"))
  file:setvbuf("full", 1048576)
  records = math.floor(file:seek("end") / record_bytes)
  file:seek("set", 0)
  if rate > 0 then
    -- This thread's share of the total rate, as microseconds between starts.
    interval_us = 1000000 * tonumber(args[5]) / rate
    -- Defined only when pacing: with a delay() wrk takes a timer round per request.
    delay = paced_delay
  end
end

function request()
  local r = file:read(record_bytes)
  if r == nil then
    file:seek("set", 0)
    r = file:read(record_bytes)
  end
  sent = sent + 1
  return r
end

function response(status, headers)
  if status >= 200 and status < 300 then
    twoxx = twoxx + 1
    local request_id = headers["x-request-id"]
    if request_id then
      ok_count = ok_count + 1
      ok[ok_count] = request_id
    end
  end
end

-- Pacing: wrk calls delay() before each request of a connection and waits
-- that many milliseconds after the previous response. Each call claims the
-- next slot of a per-thread schedule fixed in absolute time (slot k starts
-- k * interval after the first), so errors do not accumulate. How exact:
--   * wrk's timers have millisecond resolution: a request leaves up to 1 ms
--     before its slot (never drifting, as the schedule is absolute);
--   * when every connection is busy (a stall of the server or of the shared
--     cores) the schedule falls behind and late connections send at once, so
--     it catches up in a short burst instead of losing those requests;
--   * the requests in flight at the end (at most one per connection) and the
--     up to 100 ms wrk takes to stop are not in its count.
-- So the measured rate lands within a few percent below the target (the
-- table shows both). Latency is measured from the actual send, as wrk always
-- does, so a burst after a stall shows in p99.
local first_us, slot = nil, 0

function paced_delay()
  local now = now_us()
  first_us = first_us or now
  local due = first_us + slot * interval_us
  slot = slot + 1
  if due <= now then
    return 0
  end
  return math.floor((due - now) / 1000)
end

function done(summary, latency)
  local total_sent, total_twoxx, repeats = 0, 0, 0
  local out = assert(io.open(threads[1]:get("ok_file"), "w"))
  for _, thread in ipairs(threads) do
    local thread_sent = thread:get("sent")
    total_sent = total_sent + thread_sent
    total_twoxx = total_twoxx + thread:get("twoxx")
    repeats = repeats + math.max(0, thread_sent - thread:get("records"))
    local ids = thread:get("ok")
    for i = 1, thread:get("ok_count") do
      out:write(ids[i], "\n")
    end
  end
  out:close()
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d non2xx=%d socket_errors=%d p50_us=%d p99_us=%d duration_us=%d sent=%d repeats=%d\n",
    summary.requests, summary.requests - total_twoxx, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), summary.duration, total_sent, repeats))
end
