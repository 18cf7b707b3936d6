-- Note which annotation ids exist in Label Studio (live / cancelled), which were deleted, and Label
-- Studio's latest project counters; returns {live count, cancelled count} after the update. A script
-- (not a MULTI block) so that it can share one round trip with the label scripts.
-- KEYS: ann_live, ann_skipped, ls_counters.
-- ARGV: n_live, n_skipped, n_gone, then the ids of each list in that order, then counter name/value pairs.
local live_key, skip_key, counters_key = KEYS[1], KEYS[2], KEYS[3]
local n_live, n_skip, n_gone = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local function each(cmd, key, first, n)
  local i, last = first, first + n - 1
  while i <= last do  -- in chunks: unpack() is limited by Lua's stack
    local j = math.min(i + 999, last)
    redis.call(cmd, key, unpack(ARGV, i, j))
    i = j + 1
  end
end
local a = 4
each('SADD', live_key, a, n_live)
each('SREM', skip_key, a, n_live)
a = a + n_live
each('SADD', skip_key, a, n_skip)
each('SREM', live_key, a, n_skip)
a = a + n_skip
each('SREM', live_key, a, n_gone)
each('SREM', skip_key, a, n_gone)
a = a + n_gone
if a < #ARGV then redis.call('HSET', counters_key, unpack(ARGV, a, #ARGV)) end
return {redis.call('SCARD', live_key), redis.call('SCARD', skip_key)}
