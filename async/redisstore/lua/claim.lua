-- Claim up to ARGV[4] finished tasks whose pending deliveries no live node
-- holds (claim expired), for ARGV[3] ms, and renew the claims this node
-- holds (ARGV[5..]: ids). KEYS[1] meta. Returns the claimed ids.
local now = now_ms()
local dlv = tag .. ':dlv'
local until_ = now + tonumber(ARGV[3])
for i = 5, #ARGV do
  if redis.call('ZSCORE', dlv, ARGV[i]) then
    redis.call('ZADD', dlv, until_, ARGV[i])
  end
end
if tonumber(ARGV[4]) <= 0 then return {} end
local ids = redis.call('ZRANGEBYSCORE', dlv, '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
for _, id in ipairs(ids) do
  redis.call('ZADD', dlv, until_, id)
end
return ids
