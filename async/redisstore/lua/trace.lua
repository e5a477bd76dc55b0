-- Count a first attempt of a function in a trace (Traces.Count).
-- KEYS[1] the count key. ARGV[1] the trace window in ms: the count lives
-- that long from its first attempt. Returns the count, this one included.
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n
