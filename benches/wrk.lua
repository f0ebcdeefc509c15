-- wrk script shared by every target of benches/load.sh, so all get the same
-- client work: each request carries a distinct X-Forwarded-For (diem, with
-- 127.0.0.1 as a trusted proxy, then checks every request against the
-- limiter without refusing any), and the run ends with one machine-readable
-- line. usage: wrk ... -s benches/wrk.lua URL -- PATH [close|zipf]
-- ("close": every request says Connection: close, so each is a new
-- connection, as wrk reconnects after a response that closes; "zipf": the
-- client address of each request is drawn from a Zipf distribution, s = 1.1,
-- over 100,000 addresses, so that a head of heavy clients is over its limit
-- and a long tail is new).
local counter = 0
local threads = 0

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

local ZIPF_N = 100000
local ZIPF_S = 1.1

function init(args)
  path = args[1] or "/"
  close = args[2] == "close"
  zipf = args[2] == "zipf"
  if zipf then
    -- The cumulative distribution, once per thread; draws by bisection.
    cdf = {}
    local total = 0
    for k = 1, ZIPF_N do
      total = total + 1 / k ^ ZIPF_S
      cdf[k] = total
    end
    for k = 1, ZIPF_N do
      cdf[k] = cdf[k] / total
    end
    math.randomseed(os.time() + tid * 7919)
  end
end

local function zipf_rank()
  local u = math.random()
  local lo, hi = 1, ZIPF_N
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return lo
end

function request()
  if zipf then
    local r = zipf_rank()
    local ip = string.format("10.%d.%d.%d", math.floor(r / 65536) % 256, math.floor(r / 256) % 256, r % 256)
    return wrk.format("GET", path, { ["X-Forwarded-For"] = ip })
  end
  counter = counter + 1
  local ip = string.format("10.%d.%d.%d", tid % 256, math.floor(counter / 256) % 256, counter % 256)
  if counter % 65536 == 0 then
    tid = tid + 16
  end
  if close then
    return wrk.format("GET", path, { ["X-Forwarded-For"] = ip, ["Connection"] = "close" })
  end
  return wrk.format("GET", path, { ["X-Forwarded-For"] = ip })
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT rps=%.0f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f requests=%d non2xx=%d socket_errors=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000,
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout,
    e.connect, e.read, e.write, e.timeout))
end
