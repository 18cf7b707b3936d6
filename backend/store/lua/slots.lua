-- Functions shared by the slot scripts (scripts.py puts this file in front of them). A slot's first byte
-- is its flag, 1 = present (backend/store/codec.py); an encoder version's embedding count says how many
-- of its slots are present (backend/store/embeddings.py).

-- Mark the slot at byte `offset` of `key` absent without creating or growing the string (a slot past its
-- end was never written); true when it held something.
local function clear_slot(key, offset)
  if redis.call('STRLEN', key) > offset then
    local held = redis.call('GETRANGE', key, offset, offset) == '\1'
    redis.call('SETRANGE', key, offset, '\0')
    return held
  end
  return false
end

-- Add `delta` to an embedding count, if the count is kept (a version stored before counts were kept has
-- none until count_embeddings.lua counts it once).
local function add_to_count(count_key, delta)
  if delta ~= 0 and redis.call('EXISTS', count_key) == 1 then redis.call('INCRBY', count_key, delta) end
end
