-- Mark slots absent (flag byte 0) without creating or growing a bucket string: a slot past the end of its
-- bucket was never written. Returns how many slots held something.
-- KEYS: bucket keys. ARGV: the byte offset of one slot in the key of the same position.
local cleared = 0
for i, key in ipairs(KEYS) do
  if clear_slot(key, tonumber(ARGV[i])) then cleared = cleared + 1 end
end
return cleared
