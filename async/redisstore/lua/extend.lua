-- Extend a lease (a heartbeat of a long attempt). KEYS[1] meta. ARGV:
-- 3 id, 4 lease token, 5 lease ms. Returns 1, or 0 when the lease is lost.
local id = ARGV[3]
local tk = tag .. ':k:' .. id
local v = redis.call('HMGET', tk, 's', 'l', 'f')
if v[1] ~= 'running' or v[2] ~= ARGV[4] then
  return {0}
end
local exp = now_ms() + tonumber(ARGV[5])
redis.call('HSET', tk, 'e', exp)
redis.call('ZADD', tag .. ':run', 'XX', exp, id)
redis.call('ZADD', tag .. ':run:' .. v[3], 'XX', exp, id)
return {1}
