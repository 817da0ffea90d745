-- wrk script: GET /v1/pois/nearby at query points read from a file (scripts/query-points.py
-- writes them: a generator that is not Proxima's), as an independent check of
-- `proxima bench`'s nearby-pois figures. Each thread starts at its own place in the file
-- and walks it in order, so no point is asked twice in a row and the set is large.
--
--   wrk -t2 -c32 -d5s -s scripts/wrk-nearby.lua http://127.0.0.1:7878 -- POINTS [RADIUS_M] [K] [FIELDS] [KEY]
--
-- FIELDS: the fields= parameter ("-" for none). KEY: a bearer token (optional).

local count = 0

function setup(thread)
  count = count + 1
  thread:set("id", count - 1)
end

function init(args)
  points = {}
  for line in io.lines(args[1]) do
    local lat, lon = line:match("^(%S+)%s+(%S+)$")
    points[#points + 1] = { lat, lon }
  end
  radius = args[2] or "2000"
  k = args[3] or "20"
  fields = (args[4] and args[4] ~= "-") and ("&fields=" .. args[4]) or ""
  if args[5] then
    wrk.headers["Authorization"] = "Bearer " .. args[5]
  end
  next_point = (id * 7919) % #points + 1
end

function request()
  local p = points[next_point]
  next_point = next_point % #points + 1
  return wrk.format("GET", "/v1/pois/nearby?lat=" .. p[1] .. "&lon=" .. p[2]
    .. "&radius_m=" .. radius .. "&limit=" .. k .. fields)
end

function response(status, headers, body)
  if status ~= 200 then
    io.stderr:write("status " .. status .. "\n")
  end
end
