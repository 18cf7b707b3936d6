-- Save project settings compared by content with what Redis holds (not with what this process last
-- wrote: several gunicorn workers write the same project). Returns how many fields changed, or -1 when
-- the project is unknown and the caller may not create it (an event without a label config).
-- KEYS: meta. ARGV: may create ('1'/'0'), then field/value pairs (values JSON-encoded).
local meta = KEYS[1]
if ARGV[1] ~= '1' and redis.call('HEXISTS', meta, 'label_config') == 0 then return -1 end
local changed = 0
for i = 2, #ARGV, 2 do
  if redis.call('HGET', meta, ARGV[i]) ~= ARGV[i + 1] then
    redis.call('HSET', meta, ARGV[i], ARGV[i + 1])
    changed = changed + 1
  end
end
return changed
