-- Mark embedding slots absent (flag byte 0) without creating or growing a bucket string: a slot past the
-- end of its bucket was never written. Returns how many slots held an embedding.
-- KEYS: bucket keys. ARGV: the byte offset of one slot in the key of the same position.
local cleared = 0
for i, key in ipairs(KEYS) do
  local offset = tonumber(ARGV[i])
  if redis.call('STRLEN', key) > offset then
    if redis.call('GETRANGE', key, offset, offset) == '\1' then cleared = cleared + 1 end
    redis.call('SETRANGE', key, offset, '\0')
  end
end
return cleared
