-- Record (or replace) what one annotation says about its task; returns 1 when the task's label changed.
-- KEYS: labels, ann, task_anns, gen, touch_seq, touched (keys.label_keys).
-- ARGV: annotation id, task id, label ('' = none), guard ('' = a webhook: stamp the change; a number = a
-- reconcile: write only if no webhook changed this annotation after that stamp, and leave no stamp).
-- A task's label is the label of its latest recorded annotation; an empty label (cancelled or empty
-- annotation) withdraws the annotation, so the task falls back to an earlier one or loses its label.
-- task_list, without, store_task: task_labels.lua. The generation is bumped once per task whose label changed.
local labels, ann, task_anns, gen, touch_seq, touched = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local ann_id, task_id, label, guard = ARGV[1], ARGV[2], ARGV[3], ARGV[4] or ''
if guard ~= '' then
  local stamp = tonumber(redis.call('HGET', touched, ann_id) or '0')
  if stamp > tonumber(guard) then return 0 end
else
  redis.call('HSET', touched, ann_id, redis.call('INCR', touch_seq))
end
local function store(t, list)
  if store_task(labels, task_anns, t, list) == 1 then redis.call('INCR', gen) return 1 end
  return 0
end
local changed = 0
local prev_task = redis.call('HGET', ann, ann_id)
if prev_task and prev_task ~= task_id then
  changed = changed + store(prev_task, without(task_list(task_anns, prev_task), ann_id))
end
local list = without(task_list(task_anns, task_id), ann_id)
if label ~= '' then
  table.insert(list, {ann_id, label})
  redis.call('HSET', ann, ann_id, task_id)
else
  redis.call('HDEL', ann, ann_id)
end
changed = changed + store(task_id, list)
return changed
