-- Forget annotations by id (Label Studio's delete webhook carries only ids); returns how many task
-- labels changed. The generation is bumped once when any did.
-- KEYS: labels, ann, task_anns, gen (keys.label_keys). ARGV: annotation ids.
-- task_list, without, store_task: task_labels.lua.
local labels, ann, task_anns, gen = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local changed = 0
for _, ann_id in ipairs(ARGV) do
  local task_id = redis.call('HGET', ann, ann_id)
  if task_id then
    redis.call('HDEL', ann, ann_id)
    changed = changed + store_task(labels, task_anns, task_id, without(task_list(task_anns, task_id), ann_id))
  end
end
if changed > 0 then redis.call('INCR', gen) end
return changed
