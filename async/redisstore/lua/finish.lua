-- Complete, Retry or Release a leased task. KEYS[1] meta. ARGV: 3 id,
-- 4 lease token, 5 op ('complete' | 'retry' | 'release'), 6 record (""
-- keeps it), 7 final status (complete) or delay ms (retry), 8 pending
-- deliveries (1/0), 9 retention ms, 10 delivery claim ms, 11 tenant
-- max_concurrency, 12 the function's max_concurrency.
-- Returns {'lost'} | {'ok', now, wake, seq, earliest} (seq 0: the hint stands).
local id, op = ARGV[3], ARGV[5]
local tk = tag .. ':k:' .. id
local v = redis.call('HMGET', tk, 's', 'l', 'f')
if v[1] ~= 'running' or v[2] ~= ARGV[4] then
  return {'lost'}
end
local now = now_ms()
local fn = v[3]
local wake = unrun(id, fn, tonumber(ARGV[11]), tonumber(ARGV[12]))
if ARGV[6] ~= '' then
  redis.call('HINCRBY', tk, 'v', 1)
end
if op == 'complete' then
  redis.call('HSET', tk, 'r', ARGV[6], 's', ARGV[7], 'e', 0, 'u', now, 'x', now)
  redis.call('HINCRBY', tag .. ':meta', 'unf', -1)
  if ARGV[8] == '1' then
    redis.call('ZADD', tag .. ':dlv', now + tonumber(ARGV[10]), id)
  else
    redis.call('ZADD', tag .. ':fin', now + tonumber(ARGV[9]), id)
  end
  return {'ok', string.format('%d', now), wake, 0, '-2'}
end
local ready = now
if op == 'retry' then
  ready = now + math.max(tonumber(ARGV[7]), 0)
  redis.call('HSET', tk, 'r', ARGV[6])
end
redis.call('HSET', tk, 's', 'queued', 'e', 0, 'y', ready, 'u', now)
local h = nohint()
if enqueue_id(id, fn, ready) then h = hint() end
return {'ok', string.format('%d', now), wake, h[1], h[2]}
