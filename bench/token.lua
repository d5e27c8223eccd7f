-- wrk script: each request is a client_credentials token request with a client assertion that
-- was never used before (the directory refuses replayed jtis). Assertions come from the file in
-- ASSERTIONS, split between wrk's threads.
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local path = os.getenv("ASSERTIONS")
  local nthreads = tonumber(os.getenv("WRK_THREADS") or "2")
  list = {}
  local i = 0
  for line in io.lines(path) do
    if i % nthreads == id then table.insert(list, line) end
    i = i + 1
  end
  pos = 0
  tenant = os.getenv("TENANT")
  client = os.getenv("CLIENT_ID")
  scope = os.getenv("SCOPE")
  responses = 0
  failures = 0
end

function request()
  pos = pos + 1
  local a = list[((pos - 1) % #list) + 1]
  local body = "grant_type=client_credentials&client_id=" .. client ..
    "&scope=" .. scope ..
    "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer" ..
    "&client_assertion=" .. a
  return wrk.format("POST", "/" .. tenant .. "/oauth2/v2.0/token",
    {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end

function response(status, headers, body)
  responses = responses + 1
  if status ~= 200 then failures = failures + 1 end
end

function done(summary, latency, requests)
  local f = 0
  for _, t in ipairs(threads) do f = f + (t:get("failures") or 0) end
  io.write(string.format("non-200 responses: %d\n", f))
end
