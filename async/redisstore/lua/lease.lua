-- Lease one ready task of the tenant. KEYS[1] meta. ARGV: 3 lease ms,
-- 4 tenant max_concurrency, 5 tenant rate, 6 tenant burst, 7 number of
-- blocked functions B, 8..7+B their names, then per configured function:
-- name, max_concurrency, rate, burst.
-- Returns {'ok', id, fields..., now, seq, earliest}
--       | {'none', now, next ready (-1), rate wait until (-1), seq, earliest}.
local now = now_ms()
reap(now)
local ttl = tonumber(ARGV[3])
local tmax, trate, tburst = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local nb = tonumber(ARGV[7])
local blocked = {}
for i = 8, 7 + nb do blocked[ARGV[i]] = true end
local limits = {}
for i = 8 + nb, #ARGV, 4 do
  limits[ARGV[i]] = {tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])}
end
local function none(nxt, wait)
  local h = hint()
  return {'none', tostring(now), tostring(nxt), tostring(wait), h[1], h[2]}
end
local run = tag .. ':run'
if tmax > 0 and redis.call('ZCARD', run) >= tmax then
  return none(-1, -1)
end
local fns = redis.call('SMEMBERS', tag .. ':fns')
table.sort(fns)
local last = redis.call('HGET', tag .. ':meta', 'lcur') or ''
local start = 1
for i, fn in ipairs(fns) do
  if fn > last then start = i break end
end
local nxt, wait = -1, -1
for n = 0, #fns - 1 do
  local fn = fns[(start - 1 + n) % #fns + 1]
  local qk = tag .. ':q:' .. fn
  local head = redis.call('ZRANGE', qk, 0, 0, 'WITHSCORES')
  if #head == 0 then
    redis.call('SREM', tag .. ':fns', fn)
  elseif tonumber(head[2]) > now then
    if nxt < 0 or tonumber(head[2]) < nxt then nxt = tonumber(head[2]) end
  elseif not blocked[fn] then
    local lim = limits[fn] or {0, 0, 0}
    local lane = tag .. ':run:' .. fn
    if lim[1] <= 0 or redis.call('ZCARD', lane) < lim[1] then
      local w = gcra_take(tag .. ':rate', now, trate, tburst, fn, lim[2], lim[3])
      if w > 0 then
        if wait < 0 or now + w < wait then wait = now + w end
      else
        local id = head[1]
        local tk = tag .. ':k:' .. id
        redis.call('ZREM', qk, id)
        if redis.call('EXISTS', tk) == 1 then
          local exp = now + ttl
          redis.call('HINCRBY', tk, 'l', 1)
          redis.call('HSET', tk, 's', 'running', 'e', exp, 'u', now)
          redis.call('ZADD', run, exp, id)
          redis.call('ZADD', lane, exp, id)
          redis.call('HSET', tag .. ':meta', 'lcur', fn)
          local h = hint()
          local out = {'ok', id}
          for _, v in ipairs(fields(tk)) do table.insert(out, v) end
          table.insert(out, tostring(now))
          table.insert(out, h[1])
          table.insert(out, h[2])
          return out
        end
      end
    end
  end
end
return none(nxt, wait)
