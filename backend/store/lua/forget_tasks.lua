-- Forget deleted tasks: their labels, annotations (and those ids in the seen-annotations set) and what
-- /predict served for them. Returns how many task labels were removed; the generation is bumped once
-- when any was. The annotations are stamped as changed by a webhook (a reconcile that began before the
-- delete, and may still list them, leaves them alone).
-- KEYS: labels, ann, task_anns, gen, touch_seq, touched (keys.label_keys), served, ann_live.
-- ARGV: task ids.
local labels, ann, task_anns, gen, touch_seq, touched = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local served, live = KEYS[7], KEYS[8]
local removed = 0
for _, t in ipairs(ARGV) do
  local raw = redis.call('HGET', task_anns, t)
  if raw then
    for _, e in ipairs(cjson.decode(raw)) do
      local a = tostring(e[1])
      redis.call('HDEL', ann, a)
      redis.call('SREM', live, a)
      redis.call('HSET', touched, a, redis.call('INCR', touch_seq))
    end
    redis.call('HDEL', task_anns, t)
  end
  removed = removed + redis.call('HDEL', labels, t)
  redis.call('HDEL', served, t)
end
if removed > 0 then redis.call('INCR', gen) end
return removed
