-- Apply tenant hints: ARGV triples (tenant, seq, earliest ms or -1). A
-- hint is applied only if its seq is newer than the one stored, so the
-- latest tenant state wins whatever order the hints arrive in. KEYS: 1
-- ready, 2 seq.
for i = 1, #ARGV, 3 do
  local name, seq, at = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local old = tonumber(redis.call('HGET', KEYS[2], name) or '0')
  if seq > old then
    redis.call('HSET', KEYS[2], name, seq)
    if at < 0 then
      redis.call('ZREM', KEYS[1], name)
    else
      redis.call('ZADD', KEYS[1], at, name)
    end
  end
end
return 1
