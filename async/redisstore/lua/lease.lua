-- Lease one ready task of the tenant. KEYS[1] meta. ARGV: 3 lease ms,
-- 4 tenant max_concurrency, 5 tenant rate, 6 tenant burst, 7 number of
-- blocked functions B, 8..7+B their names, then per configured function:
-- name, max_concurrency, rate, burst.
-- Returns {'ok', id, fields..., now, seq, earliest} (seq 0: the hint stands)
--       | {'none', now, next ready (-1), rate wait until (-1), seq, earliest}.
local now = now_ms()
local reaped = reap(now)
local ttl = tonumber(ARGV[3])
local tmax, trate, tburst = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local nb = tonumber(ARGV[7])
local blocked = {}
for i = 8, 7 + nb do blocked[ARGV[i]] = true end
local limits = {}
for i = 8 + nb, #ARGV, 4 do
  limits[ARGV[i]] = {tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])}
end
local wait = -1
local function none()
  local e = earliest()
  local nxt = -1
  if e > now then nxt = e end
  local h = hint()
  return {'none', string.format('%d', now), string.format('%d', nxt), string.format('%d', wait), h[1], h[2]}
end
local run = tag .. ':run'
if tmax > 0 and redis.call('ZCARD', run) >= tmax then
  return none()
end
local ready = redis.call('ZRANGEBYSCORE', heads, '-inf', now)
if #ready == 0 then
  return none()
end
table.sort(ready)
local last = redis.call('HGET', tag .. ':meta', 'lcur') or ''
local start = 1
for i, fn in ipairs(ready) do
  if fn > last then start = i break end
end
for n = 0, #ready - 1 do
  local fn = ready[(start - 1 + n) % #ready + 1]
  if not blocked[fn] then
    local lim = limits[fn] or {0, 0, 0}
    local lane = tag .. ':run:' .. fn
    if lim[1] <= 0 or redis.call('ZCARD', lane) < lim[1] then
      local w = gcra_take(tag .. ':rate', now, trate, tburst, fn, lim[2], lim[3])
      if w > 0 then
        if wait < 0 or now + w < wait then wait = now + w end
      else
        local popped = redis.call('ZPOPMIN', tag .. ':q:' .. fn)
        refresh_head(fn)
        local id = popped[1]
        local tk = tag .. ':k:' .. id
        if id and redis.call('EXISTS', tk) == 1 then
          local exp = now + ttl
          redis.call('HINCRBY', tk, 'l', 1)
          redis.call('HSET', tk, 's', 'running', 'e', exp, 'u', now)
          redis.call('ZADD', run, exp, id)
          redis.call('ZADD', lane, exp, id)
          redis.call('HSET', tag .. ':meta', 'lcur', fn)
          local h = nohint()
          local e = earliest()
          if reaped > 0 or e < 0 or e > now then h = hint() end
          local out = {'ok', id}
          for _, v in ipairs(fields(tk)) do table.insert(out, v) end
          table.insert(out, string.format('%d', now))
          table.insert(out, h[1])
          table.insert(out, h[2])
          return out
        end
      end
    end
  end
end
return none()
