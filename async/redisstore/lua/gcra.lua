-- gcra_take takes a token from the tenant's bucket (field "") and the
-- lane's (field fn) of the hash key when both have one and returns 0;
-- otherwise it takes nothing and returns the ms until both will. A bucket
-- with rate <= 0 is unlimited. GCRA: interval I = 1000/rate ms, tolerance
-- tau = I * (burst - 1); the stored value is the theoretical arrival time
-- (ms, a float as a string). Allowed when tat - now <= tau, with
-- tat = max(stored, now); the hash lives at least max(tau + I) + 1s.
-- No side effect but its own: scripts include it (lease, rate).
local function gcra_take(key, now, tenant_rate, tenant_burst, fn, lane_rate, lane_burst)
  local buckets = {}
  if tenant_rate > 0 then table.insert(buckets, {'', tenant_rate, tenant_burst}) end
  if lane_rate > 0 then table.insert(buckets, {fn, lane_rate, lane_burst}) end
  if #buckets == 0 then return 0 end
  local wait, horizon = 0, 0
  local tats = {}
  for i, b in ipairs(buckets) do
    local interval = 1000 / b[2]
    local tau = interval * (math.max(b[3], 1) - 1)
    local tat = math.max(tonumber(redis.call('HGET', key, b[1]) or '0'), now)
    if tat - now > tau then
      wait = math.max(wait, math.ceil(tat - tau - now))
    end
    tats[i] = tat + interval
    horizon = math.max(horizon, tau + interval)
  end
  if wait > 0 then return math.max(wait, 1) end
  for i, b in ipairs(buckets) do
    redis.call('HSET', key, b[1], string.format('%.17g', tats[i]))
  end
  -- The hash holds every lane of the tenant: never shorten its life, or a
  -- slow lane's TAT would go with a fast lane's expiry.
  local ttl = math.ceil(horizon) + 1000
  if redis.call('PTTL', key) < ttl then
    redis.call('PEXPIRE', key, ttl)
  end
  return 0
end
