-- Pick up to ARGV[2] tenants with ready tasks, round-robin after the
-- cursor, skipping blocked tenants (ARGV[3..]). KEYS: 1 ready, 2 cursor.
-- ARGV[1] clock skew ms. Moves the cursor to the first tenant picked.
-- Returns {now, next future ready (-1), tenants...}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
local k = tonumber(ARGV[2])
local blocked = {}
for i = 3, #ARGV do blocked[ARGV[i]] = true end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
table.sort(due)
local cur = redis.call('GET', KEYS[2]) or ''
local start = 1
for i, name in ipairs(due) do
  if name > cur then start = i break end
end
local out = {}
for n = 0, #due - 1 do
  local name = due[(start - 1 + n) % #due + 1]
  if not blocked[name] then
    table.insert(out, name)
    if #out >= k then break end
  end
end
if #out > 0 then redis.call('SET', KEYS[2], out[1]) end
local nxt = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
local res = {string.format('%d', now), nxt[2] or '-1'}
for _, name in ipairs(out) do table.insert(res, name) end
return res
