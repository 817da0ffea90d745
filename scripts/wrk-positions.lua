-- wrk script: POST /v1/positions, NDJSON batches of updates, as an independent check of
-- `proxima bench`'s positions, fences and roaming figures (a second generator and a second
-- data distribution: travellers bench:t:0..N-1 moved to uniformly random places between
-- 60 S and 60 N, not by small steps around cities).
--
--   wrk -t2 -c8 -d10s -s scripts/wrk-positions.lua http://127.0.0.1:7878 -- TS0 [BATCH] [N] [THREADS]
--
-- TS0: a Unix-ms timestamp after the travellers' newest report (`date +%s%3N`). Each request's
-- updates carry TS0 + (requests this thread sent) x THREADS + (thread number), so a later
-- request's updates are newer, across threads too (a traveller twice in one batch is stale
-- the second time; the server counts those in its answer). BATCH: updates per request
-- (1000). N: travellers (1000000). THREADS: as given to -t (2).
-- Updates per second = requests per second x BATCH.

local count = 0

function setup(thread)
  count = count + 1
  thread:set("id", count - 1)
end

function init(args)
  ts0 = tonumber(args[1]) or 0
  batch = tonumber(args[2]) or 1000
  travellers = tonumber(args[3]) or 1000000
  threads = tonumber(args[4]) or 2
  math.randomseed(ts0 + id)
  requests = 0
end

function request()
  requests = requests + 1
  local ts = ts0 + requests * threads + id
  local lines = {}
  for i = 1, batch do
    local t = math.random(0, travellers - 1)
    local lat = math.random() * 120 - 60
    local lon = math.random() * 360 - 180
    lines[i] = string.format('{"id":"bench:t:%d","lat":%.6f,"lon":%.6f,"ts":%d}', t, lat, lon, ts)
  end
  return wrk.format("POST", "/v1/positions", {["Content-Type"] = "application/x-ndjson"},
    table.concat(lines, "\n") .. "\n")
end
