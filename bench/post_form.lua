-- wrk script: POST a fixed form body with HTTP Basic client authentication.
-- Reads BENCH_BASIC (base64 of "client_id:client_secret") and BENCH_BODY (the
-- urlencoded form) from the environment, so one script serves /token and /introspect.
-- At the end it reports how many responses were not 200 (wrk only counts >= 400).

local basic = os.getenv("BENCH_BASIC")
local body = os.getenv("BENCH_BODY")
if basic == nil or body == nil then
  error("set BENCH_BASIC and BENCH_BODY")
end

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. basic

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  not_ok = 0
end

function response(status, headers, body)
  if status ~= 200 then
    not_ok = not_ok + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + (thread:get("not_ok") or 0)
  end
  io.write(string.format("NOT_200 %d\n", total))
end
