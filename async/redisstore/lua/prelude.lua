-- Shared by every tenant script. ARGV[1] is the tenant's hash tag
-- "{<prefix>:t:<tenant>}", ARGV[2] the clock skew in ms (0 in production).
local tag = ARGV[1]

-- now_ms is Redis's clock (TIME) plus the skew: never a node's clock.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[2])
end

-- earliest returns the earliest ready time of the tenant's queued tasks,
-- or -1; it forgets lanes whose queue is empty.
local function earliest()
  local best = -1
  for _, fn in ipairs(redis.call('SMEMBERS', tag .. ':fns')) do
    local h = redis.call('ZRANGE', tag .. ':q:' .. fn, 0, 0, 'WITHSCORES')
    if #h == 0 then
      redis.call('SREM', tag .. ':fns', fn)
    else
      local s = tonumber(h[2])
      if best < 0 or s < best then best = s end
    end
  end
  return best
end

-- hint returns what the global ready hint of the tenant should become: a
-- new sequence number and the earliest ready time.
local function hint()
  return {redis.call('HINCRBY', tag .. ':meta', 'seq', 1), tostring(earliest())}
end

-- queue puts a task in its lane's queue, ready at ready.
local function enqueue_id(id, fn, ready)
  redis.call('ZADD', tag .. ':q:' .. fn, ready, id)
  redis.call('SADD', tag .. ':fns', fn)
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
