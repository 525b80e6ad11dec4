-- POST /v1/login as the seeded users of one bcrypt cost, in turn (each line: an email).

local requests = {}
local next_request = 0
local headers = {["Content-Type"] = "application/json"}
local password = "bench password 1234"

function scenario_init(path)
  for _, email in ipairs(bench_read_lines(path)) do
    local body = string.format('{"email":"%s","password":"%s"}', email, password)
    table.insert(requests, wrk.format("POST", "/v1/login", headers, body))
  end
end

function request()
  next_request = next_request % #requests + 1
  return requests[next_request]
end

function response(status, _, body)
  bench_count(status, body)
end
