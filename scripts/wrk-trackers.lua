-- wrk script for scripts/trackers-bench.sh: a tracker protocol against Proxima's own API,
-- the same positions either way.
--
--   wrk -t2 -c32 -d10s -s scripts/wrk-trackers.lua URL -- MODE DEVICES_FILE TS0 [BATCH] [KEY]
--
-- MODE: `put` (PUT /v1/travellers/{id}/position with the service KEY), `owntracks`
-- (POST /v1/ingest/owntracks, Basic auth with the device's token), `positions`
-- (POST /v1/positions, NDJSON batches of BATCH reports of one traveller, with KEY) or
-- `overland` (POST /v1/ingest/overland, batches of BATCH GeoJSON points of one traveller,
-- with its device token). DEVICES_FILE: lines of `traveller token`; each of the 2 threads
-- takes every other device, so that no two threads report one traveller. TS0: Unix ms
-- after the devices' last reports and at least a day before now; each request's reports
-- are a second apart and newer than the device's last (OwnTracks' `tst` and Overland's
-- timestamps are in seconds).
-- Updates per second = requests per second x BATCH (1 for put and owntracks).

local count = 0

function setup(thread)
  count = count + 1
  thread:set("id", count - 1)
end

local function b64(data)
  local chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
  return ((data:gsub('.', function(x)
    local r, b = '', x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and '1' or '0') end
    return r
  end) .. '0000'):gsub('%d%d%d?%d?%d?%d?', function(x)
    if #x < 6 then return '' end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == '1' and 2 ^ (6 - i) or 0) end
    return chars:sub(c + 1, c + 1)
  end) .. ({ '', '==', '=' })[#data % 3 + 1])
end

function init(args)
  mode = args[1]
  ts0 = tonumber(args[3])
  batch = tonumber(args[4]) or 100
  key = args[5] or ''
  devices = {}
  local n = 0
  for line in io.lines(args[2]) do
    local traveller, token = line:match('^(%S+) (%S+)$')
    if n % 2 == id then
      devices[#devices + 1] = { traveller = traveller, token = token, next_ts = ts0,
        basic = 'Basic ' .. b64(traveller .. ':' .. token) }
    end
    n = n + 1
  end
  math.randomseed(ts0 + id)
  requests = 0
end

local function place()
  return math.random() * 120 - 60, math.random() * 360 - 180
end

function request()
  requests = requests + 1
  local d = devices[math.random(1, #devices)]
  local ts = d.next_ts + 1000
  d.next_ts = ts + batch * 1000
  if mode == 'put' then
    local lat, lon = place()
    return wrk.format('PUT', '/v1/travellers/' .. d.traveller .. '/position',
      { ['Authorization'] = 'Bearer ' .. key, ['Content-Type'] = 'application/json' },
      string.format('{"lat":%.6f,"lon":%.6f,"ts":%d,"accuracy_m":10}', lat, lon, ts))
  elseif mode == 'owntracks' then
    local lat, lon = place()
    return wrk.format('POST', '/v1/ingest/owntracks',
      { ['Authorization'] = d.basic, ['Content-Type'] = 'application/json' },
      string.format('{"_type":"location","lat":%.6f,"lon":%.6f,"tst":%d,"acc":10,"tid":"bt","batt":80}',
        lat, lon, math.floor(ts / 1000)))
  elseif mode == 'positions' then
    local lines = {}
    for i = 1, batch do
      local lat, lon = place()
      lines[i] = string.format('{"id":"%s","lat":%.6f,"lon":%.6f,"ts":%d,"accuracy_m":10}',
        d.traveller, lat, lon, ts + i * 1000)
    end
    return wrk.format('POST', '/v1/positions',
      { ['Authorization'] = 'Bearer ' .. key, ['Content-Type'] = 'application/x-ndjson' },
      table.concat(lines, '\n') .. '\n')
  else
    local points = {}
    -- The date once a request (os.date is slow in the generator); the time of day by
    -- arithmetic, so that the generator's work a point is one string.format, as above.
    local at0 = math.floor(ts / 1000)
    local day = os.date('!%Y-%m-%d', at0)
    local base = at0 % 86400
    for i = 1, batch do
      local lat, lon = place()
      local s = base + i
      local stamp
      if s < 86400 then
        stamp = string.format('%sT%02d:%02d:%02dZ', day, math.floor(s / 3600), math.floor(s / 60) % 60, s % 60)
      else
        stamp = os.date('!%Y-%m-%dT%H:%M:%SZ', at0 + i)
      end
      points[i] = string.format(
        '{"type":"Feature","geometry":{"type":"Point","coordinates":[%.6f,%.6f]},"properties":{"timestamp":"%s","horizontal_accuracy":10,"speed":1,"battery_level":0.8}}',
        lon, lat, stamp)
    end
    return wrk.format('POST', '/v1/ingest/overland',
      { ['Authorization'] = 'Bearer ' .. d.token, ['Content-Type'] = 'application/json' },
      '{"locations":[' .. table.concat(points, ',') .. ']}')
  end
end

function response(status, headers, body)
  if status ~= 200 then
    io.stderr:write('status ' .. status .. ': ' .. body .. '\n')
  end
end
