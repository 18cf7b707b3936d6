-- Forget annotations by id (Label Studio's delete webhook carries only ids); returns how many task
-- labels changed. The generation is bumped once when any did.
-- Every deleted id is stamped as changed by a webhook (a reconcile that began earlier leaves it alone).
-- KEYS: labels, ann, task_anns, gen, touch_seq, touched (keys.label_keys). ARGV: annotation ids.
-- task_list, without, store_task: task_labels.lua.
local labels, ann, task_anns, gen, touch_seq, touched = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local changed = 0
for _, ann_id in ipairs(ARGV) do
  redis.call('HSET', touched, ann_id, redis.call('INCR', touch_seq))
  local task_id = redis.call('HGET', ann, ann_id)
  if task_id then
    redis.call('HDEL', ann, ann_id)
    changed = changed + store_task(labels, task_anns, task_id, without(task_list(task_anns, task_id), ann_id))
  end
end
if changed > 0 then redis.call('INCR', gen) end
return changed
