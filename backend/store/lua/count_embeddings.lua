-- An encoder version's embedding count; a version stored before counts were kept is counted here once
-- (every slot flag of its buckets, in one step so no write is missed or counted twice) and the count kept.
-- KEYS: the count, the bucket set. ARGV: the bucket key prefix (a bucket number completes it), the slot size.
local kept = redis.call('GET', KEYS[1])
if kept then return tonumber(kept) end
local prefix, size = ARGV[1], tonumber(ARGV[2])
local n = 0
for _, b in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local data = redis.call('GET', prefix .. b)
  if data then
    for pos = 1, #data, size do
      if string.byte(data, pos) == 1 then n = n + 1 end
    end
  end
end
redis.call('SET', KEYS[1], n)
return n
