-- Take a rate token (Rates.Take): gcra_take at Redis's time.
-- KEYS[1] the tenant's rate hash. ARGV: 1 clock skew in ms (0 in
-- production), 2 tenant rate, 3 tenant burst, 4 function, 5 lane rate,
-- 6 lane burst. Returns 0, or the ms until both buckets have a token.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000 + tonumber(ARGV[1])
return gcra_take(KEYS[1], now, tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]))
