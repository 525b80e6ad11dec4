-- POST /oauth/token (grant_type=refresh_token, form-encoded), exactly as refresh.lua drives
-- POST /v1/refresh: every request is a real rotation. The data file holds one refresh token per
-- seeded session (as many as connections); a thread's pool holds the newest token of each of
-- its chains that is not in flight. request() takes one, response() puts back the rotated one,
-- so a chain is never presented twice and never by two requests at once. A failed rotation
-- loses its chain; a thread left without tokens sends an invalid one, which counts as an error.

local pool = {}
local body_fmt = "grant_type=refresh_token&refresh_token=%s"
local headers = {["Content-Type"] = "application/x-www-form-urlencoded"}

function scenario_init(path)
  pool = bench_read_lines(path)
  -- wrk calls request() once on thread 0 right after init() to inspect it, and never sends it.
  inspected = thread_index ~= 0
end

function request()
  if not inspected then
    inspected = true
    return wrk.format("POST", "/oauth/token", headers, "")
  end
  local token = table.remove(pool) or "lost"
  return wrk.format("POST", "/oauth/token", headers, string.format(body_fmt, token))
end

function response(status, _, body)
  if status == 200 then
    table.insert(pool, body:match('"refresh_token":"([^"]+)"'))
  end
  bench_count(status, body)
end
