-- Lease up to ARGV[4] ready tasks of the tenant, one lane after another
-- round-robin. KEYS[1] meta. ARGV: 3 lease ms, 4 most tasks, 5 tenant
-- max_concurrency, 6 tenant rate, 7 tenant burst, 8 number of blocked
-- functions B, 9..8+B their names, then per configured function: name,
-- max_concurrency, rate, burst.
-- Returns {'ok', n, (id, fields...) × n, now, seq, earliest} (seq 0: the hint stands)
--       | {'none', now, next ready (-1), rate wait until (-1), seq, earliest}.
local now = now_ms()
local reaped = reap(now)
local ttl, most = tonumber(ARGV[3]), tonumber(ARGV[4])
local tmax, trate, tburst = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local nb = tonumber(ARGV[8])
local blocked = {}
for i = 9, 8 + nb do blocked[ARGV[i]] = true end
local limits = {}
for i = 9 + nb, #ARGV, 4 do
  limits[ARGV[i]] = {tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])}
end
local wait = -1
local run = tag .. ':run'

-- lease_one leases the head of the next eligible lane after the one
-- served last, appending it to out; false when no lane can give one.
local function lease_one(out)
  if tmax > 0 and redis.call('ZCARD', run) >= tmax then
    return false
  end
  local ready = redis.call('ZRANGEBYSCORE', heads, '-inf', now)
  if #ready == 0 then
    return false
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
          if id and redis.call('EXISTS', tag .. ':k:' .. id) == 1 then
            local tk = tag .. ':k:' .. id
            local exp = now + ttl
            redis.call('HINCRBY', tk, 'l', 1)
            redis.call('HSET', tk, 's', 'running', 'e', exp, 'u', now)
            redis.call('ZADD', run, exp, id)
            redis.call('ZADD', lane, exp, id)
            redis.call('HSET', tag .. ':meta', 'lcur', fn)
            table.insert(out, id)
            for _, v in ipairs(fields(tk)) do table.insert(out, v) end
            return true
          end
          return lease_one(out) -- a vanished record: the next head
        end
      end
    end
  end
  return false
end

local out = {'ok', 0}
local n = 0
while n < most and lease_one(out) do
  n = n + 1
end
local e = earliest()
if n == 0 then
  local nxt = -1
  if e > now then nxt = e end
  local h = hint()
  return {'none', string.format('%d', now), string.format('%d', nxt), string.format('%d', wait), h[1], h[2]}
end
out[2] = n
local h = nohint()
if reaped > 0 or e < 0 or e > now then h = hint() end
table.insert(out, string.format('%d', now))
table.insert(out, h[1])
table.insert(out, h[2])
return out
