-- Enqueue. KEYS[1] meta. ARGV: 3 id, 4 function, 5 record, 6 payload,
-- 7 delay ms, 8 max_queued (<= 0: none), 9 idempotency key ("": none),
-- 10 idempotency window ms.
-- Returns {'ok', now, seq, earliest} (seq 0: the hint stands)
--       | {'dup', id} | {'exists'} | {'quota', unfinished}.
local id, fn = ARGV[3], ARGV[4]
local now = now_ms()
local ikey = ARGV[9]
if ikey ~= '' then
  -- "<id>|<expiry ms>": the window ends on the scripts' clock; the key's
  -- own TTL only collects it.
  local old = redis.call('GET', tag .. ':i:' .. ikey)
  if old then
    local sep = string.find(old, '|', 1, true)
    local oid, exp = string.sub(old, 1, sep - 1), tonumber(string.sub(old, sep + 1))
    if exp > now and redis.call('EXISTS', tag .. ':k:' .. oid) == 1 then
      return {'dup', oid}
    end
  end
end
local tk = tag .. ':k:' .. id
if redis.call('EXISTS', tk) == 1 then
  return {'exists'}
end
local maxq = tonumber(ARGV[8])
if maxq > 0 then
  local unf = tonumber(redis.call('HGET', tag .. ':meta', 'unf') or '0')
  if unf >= maxq then
    return {'quota', unf}
  end
end
local ready = now + tonumber(ARGV[7])
redis.call('HSET', tk, 'r', ARGV[5], 'p', ARGV[6], 's', 'queued', 'f', fn, 'l', 0, 'e', 0,
  'y', ready, 'c', 0, 'u', now, 'n', now, 'x', 0, 'v', 1)
local sooner = enqueue_id(id, fn, ready)
redis.call('SADD', tag .. ':lanes', fn)
redis.call('ZADD', tag .. ':all', 0, string.format('%015d', now) .. ':' .. id)
redis.call('HINCRBY', tag .. ':meta', 'unf', 1)
if ikey ~= '' then
  redis.call('SET', tag .. ':i:' .. ikey, id .. '|' .. string.format('%d', now + tonumber(ARGV[10])), 'PX', ARGV[10])
end
local h = nohint()
if sooner then h = hint() end
return {'ok', string.format('%d', now), h[1], h[2]}
