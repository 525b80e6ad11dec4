-- POST /oauth/introspect with the access tokens of seeded sessions, in turn, as a resource server
-- asks (HTTP Basic client credentials). Each line: "<Basic credentials> <access token>".

local requests = {}
local next_request = 0

function scenario_init(path)
  for _, line in ipairs(bench_read_lines(path)) do
    local credentials, token = line:match("^(%S+) (%S+)$")
    local headers = {
      Authorization = "Basic " .. credentials,
      ["Content-Type"] = "application/x-www-form-urlencoded",
    }
    table.insert(requests, wrk.format("POST", "/oauth/introspect", headers, "token=" .. token))
  end
end

function request()
  next_request = next_request % #requests + 1
  return requests[next_request]
end

function response(status, _, body)
  -- An inactive answer is a 200 too: only an active one counts as served.
  if status == 200 and not body:find('"active":true', 1, true) then
    status = 599
  end
  bench_count(status, body)
end
