-- Write embedding slots of one encoder version and count the slots that held none before, in one step, so
-- two writers of one task count it once. The first write of a version (no bucket set yet: nothing of it
-- is stored) starts its count. Returns how many slots were new.
-- KEYS: the count, the bucket set, then bucket keys.
-- ARGV: the bucket number of each bucket key, in order; then three values per slot: the position of its
-- bucket key among the bucket keys (1: KEYS[3]), its byte offset, its bytes.
local count, bucket_set = KEYS[1], KEYS[2]
local buckets = #KEYS - 2
local first = redis.call('EXISTS', count) == 0 and redis.call('EXISTS', bucket_set) == 0
local fresh = 0
for i = buckets + 1, #ARGV, 3 do
  local key, offset = KEYS[2 + tonumber(ARGV[i])], tonumber(ARGV[i + 1])
  if redis.call('GETRANGE', key, offset, offset) ~= '\1' then fresh = fresh + 1 end
  redis.call('SETRANGE', key, offset, ARGV[i + 2])
end
if buckets > 0 then redis.call('SADD', bucket_set, unpack(ARGV, 1, buckets)) end
if first then redis.call('SET', count, fresh) else add_to_count(count, fresh) end
return fresh
