-- Apply tenant hints: ARGV triples (tenant, seq, earliest ms or -1). A
-- hint is applied only if its seq is newer than the one stored, so the
-- latest tenant state wins whatever order the hints arrive in. KEYS: 1
-- ready, 2 seq. Returns how many tenants became ready sooner (added, or
-- their time moved earlier): waiting nodes must look again.
local sooner = 0
for i = 1, #ARGV, 3 do
  local name, seq, at = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local old = tonumber(redis.call('HGET', KEYS[2], name) or '0')
  if seq > old then
    redis.call('HSET', KEYS[2], name, seq)
    if at < 0 then
      redis.call('ZREM', KEYS[1], name)
    else
      local prev = redis.call('ZSCORE', KEYS[1], name)
      if not prev or at < tonumber(prev) then sooner = sooner + 1 end
      redis.call('ZADD', KEYS[1], at, name)
    end
  end
end
return sooner
