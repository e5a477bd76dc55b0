-- Complete, Retry or Release leased tasks of the tenant, in order.
-- KEYS[1] meta. ARGV from 3, ten per task: id, lease token, op
-- ('complete' | 'retry' | 'release'), record ("" keeps it), final status
-- (complete) or delay ms (retry), pending deliveries (1/0), retention ms,
-- delivery claim ms, tenant max_concurrency, the function's
-- max_concurrency.
-- Returns five values per task: 'lost' or 'ok', now, wake (1 when a slot
-- freed at a limit), hint seq (0: the hint stands), earliest.
local now = now_ms()
local function finish(id, token, op, rec, arg, pending, retention, claim, tmax, lmax)
  local tk = tag .. ':k:' .. id
  local v = redis.call('HMGET', tk, 's', 'l', 'f')
  if v[1] ~= 'running' or v[2] ~= token then
    return {'lost', 0, 0, 0, '-2'}
  end
  local fn = v[3]
  local wake = unrun(id, fn, tonumber(tmax), tonumber(lmax))
  if rec ~= '' then
    redis.call('HINCRBY', tk, 'v', 1)
  end
  if op == 'complete' then
    redis.call('HSET', tk, 'r', rec, 's', arg, 'e', 0, 'u', now, 'x', now)
    redis.call('HINCRBY', tag .. ':meta', 'unf', -1)
    if pending == '1' then
      redis.call('ZADD', tag .. ':dlv', now + tonumber(claim), id)
    else
      redis.call('ZADD', tag .. ':fin', now + tonumber(retention), id)
    end
    return {'ok', now, wake, 0, '-2'}
  end
  local ready = now
  if op == 'retry' then
    ready = ready_at(now, arg)
    redis.call('HSET', tk, 'r', rec)
  end
  redis.call('HSET', tk, 's', 'queued', 'e', 0, 'y', ready, 'u', now)
  local h = nohint()
  if enqueue_id(id, fn, ready) then h = hint() end
  return {'ok', now, wake, h[1], h[2]}
end
local out = {}
for i = 3, #ARGV, 10 do
  local r = finish(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5],
    ARGV[i + 6], ARGV[i + 7], ARGV[i + 8], ARGV[i + 9])
  r[2] = string.format('%d', r[2])
  for _, x in ipairs(r) do table.insert(out, x) end
end
return out
