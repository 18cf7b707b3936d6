-- Forget embeddings of one encoder version: clear their slots (as clear_slots.lua), and take the ones that
-- held an embedding off the version's count, in one step. Returns how many slots held an embedding.
-- KEYS: the count, then bucket keys. ARGV: the byte offset of one slot in the bucket key at KEYS[i + 1].
local cleared = 0
for i = 2, #KEYS do
  if clear_slot(KEYS[i], tonumber(ARGV[i - 1])) then cleared = cleared + 1 end
end
add_to_count(KEYS[1], -cleared)
return cleared
