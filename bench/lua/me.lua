-- GET /v1/me with the access tokens of seeded sessions, in turn.

local requests = {}
local next_request = 0

function scenario_init(path)
  for _, token in ipairs(bench_read_lines(path)) do
    table.insert(requests, wrk.format("GET", "/v1/me", {Authorization = "Bearer " .. token}))
  end
end

function request()
  next_request = next_request % #requests + 1
  return requests[next_request]
end

function response(status, _, body)
  bench_count(status, body)
end
