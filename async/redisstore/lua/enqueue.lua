-- Enqueue tasks of the tenant, in order. KEYS[1] meta. ARGV from 3, eight
-- per task: id, function, record, payload, delay ms, max_queued (<= 0:
-- none), idempotency key ("": none), idempotency window ms.
-- Returns four values per task: 'ok', now, seq (0: the hint stands),
-- earliest | 'dup', the existing task's id, 0, 0 | 'exists', 0, 0, 0 |
-- 'quota', unfinished, 0, 0.
local now = now_ms()
local function enqueue(id, fn, rec, payload, delay, maxq, ikey, window)
  if ikey ~= '' then
    -- "<id>|<expiry ms>": the window ends on the scripts' clock; the
    -- key's own TTL only collects it.
    local old = redis.call('GET', tag .. ':i:' .. ikey)
    if old then
      local sep = string.find(old, '|', 1, true)
      local oid, exp = string.sub(old, 1, sep - 1), tonumber(string.sub(old, sep + 1))
      if exp > now and redis.call('EXISTS', tag .. ':k:' .. oid) == 1 then
        return {'dup', oid, 0, 0}
      end
    end
  end
  local tk = tag .. ':k:' .. id
  if redis.call('EXISTS', tk) == 1 then
    return {'exists', 0, 0, 0}
  end
  maxq = tonumber(maxq)
  if maxq > 0 then
    local unf = tonumber(redis.call('HGET', tag .. ':meta', 'unf') or '0')
    if unf >= maxq then
      return {'quota', unf, 0, 0}
    end
  end
  local ready = ready_at(now, delay)
  redis.call('HSET', tk, 'r', rec, 'p', payload, 's', 'queued', 'f', fn, 'l', 0, 'e', 0,
    'y', ready, 'c', 0, 'u', now, 'n', now, 'x', 0, 'v', 1)
  local sooner = enqueue_id(id, fn, ready)
  redis.call('SADD', tag .. ':lanes', fn)
  redis.call('ZADD', tag .. ':all', 0, string.format('%015d', now) .. ':' .. id)
  redis.call('HINCRBY', tag .. ':meta', 'unf', 1)
  if ikey ~= '' then
    redis.call('SET', tag .. ':i:' .. ikey, id .. '|' .. string.format('%d', now + tonumber(window)), 'PX', window)
  end
  local h = nohint()
  if sooner then h = hint() end
  return {'ok', string.format('%d', now), h[1], h[2]}
end
local out = {}
for i = 3, #ARGV, 8 do
  local r = enqueue(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7])
  for _, x in ipairs(r) do table.insert(out, x) end
end
return out
