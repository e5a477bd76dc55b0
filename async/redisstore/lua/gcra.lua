-- gcra_take takes a token from the tenant's bucket (field "") and the
-- lane's (field fn) of the hash key when both have one and returns 0;
-- otherwise it takes nothing and returns the ms until both will. A bucket
-- with rate <= 0 is unlimited. GCRA: interval I = 1000/rate ms, tolerance
-- tau = I * (burst - 1); the stored value is the theoretical arrival time.
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
    redis.call('HSET', key, b[1], tostring(tats[i]))
  end
  redis.call('PEXPIRE', key, math.ceil(horizon) + 1000)
  return 0
end
