-- Shared by every tenant script. ARGV[1] is the tenant's hash tag
-- "{<prefix>:t:<tenant>}", ARGV[2] the clock skew in ms (0 in production).
local tag = ARGV[1]
-- heads: function → ready time (ms) of the head of its queue, for every
-- lane with queued tasks; its minimum is the tenant's earliest ready time.
local heads = tag .. ':heads'

-- now_ms is Redis's clock (TIME) plus the skew: never a node's clock.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[2])
end

-- ready_at is when a task delayed by delay ms is ready: now_ms floors
-- Redis's clock, so a delayed task gets 1 ms more and never runs early.
local function ready_at(now, delay)
  delay = tonumber(delay)
  if delay <= 0 then return now end
  return now + delay + 1
end

-- earliest returns the earliest ready time of the tenant's queued tasks,
-- or -1.
local function earliest()
  local h = redis.call('ZRANGE', heads, 0, 0, 'WITHSCORES')
  if #h == 0 then return -1 end
  return tonumber(h[2])
end

-- hint returns what the global ready hint of the tenant should become: a
-- new sequence number and the earliest ready time; nohint leaves it.
local function hint()
  return {redis.call('HINCRBY', tag .. ':meta', 'seq', 1), string.format('%d', earliest())}
end
local function nohint()
  return {0, '-2'}
end

-- enqueue_id queues a task in its lane at ready; it returns true when the
-- tenant became ready sooner (its hint must be lowered).
local function enqueue_id(id, fn, ready)
  local before = earliest()
  redis.call('ZADD', tag .. ':q:' .. fn, ready, id)
  local h = redis.call('ZSCORE', heads, fn)
  if not h or ready < tonumber(h) then
    redis.call('ZADD', heads, ready, fn)
  end
  return before < 0 or ready < before
end

-- refresh_head resets a lane's head after tasks left its queue.
local function refresh_head(fn)
  local h = redis.call('ZRANGE', tag .. ':q:' .. fn, 0, 0, 'WITHSCORES')
  if #h == 0 then
    redis.call('ZREM', heads, fn)
  else
    redis.call('ZADD', heads, h[2], fn)
  end
end

-- unrun removes a task from the run sets; it returns 1 when the tenant or
-- the lane was at its limit (tmax, lmax) before, so that waiters wake.
local function unrun(id, fn, tmax, lmax)
  local run, lane = tag .. ':run', tag .. ':run:' .. fn
  local full = 0
  if (tmax > 0 and redis.call('ZCARD', run) >= tmax) or (lmax > 0 and redis.call('ZCARD', lane) >= lmax) then
    full = 1
  end
  redis.call('ZREM', run, id)
  redis.call('ZREM', lane, id)
  return full
end

-- reap requeues (without spending an attempt) up to 100 tasks whose lease
-- expired by now, and returns how many.
local function reap(now)
  local run = tag .. ':run'
  local n = 0
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', run, '-inf', now, 'LIMIT', 0, 100)) do
    local tk = tag .. ':k:' .. id
    local v = redis.call('HMGET', tk, 's', 'e', 'f')
    redis.call('ZREM', run, id)
    if v[3] then
      redis.call('ZREM', tag .. ':run:' .. v[3], id)
    end
    if v[1] == 'running' and tonumber(v[2]) <= now then
      redis.call('HSET', tk, 's', 'queued', 'e', 0, 'y', now, 'u', now)
      redis.call('HINCRBY', tk, 'c', 1)
      enqueue_id(id, v[3], now)
      n = n + 1
    end
  end
  return n
end

-- fields are the task hash fields returned with a task, in this order.
local function fields(tk)
  return redis.call('HMGET', tk, 'r', 'p', 's', 'l', 'e', 'y', 'c', 'u', 'n', 'x', 'v')
end
