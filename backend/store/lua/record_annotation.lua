-- Record (or replace) what one annotation says about its task; returns 1 when the task's label changed.
-- KEYS: labels, ann, task_anns, gen (keys.label_keys). ARGV: annotation id, task id, label ('' = none).
-- A task's label is the label of its latest recorded annotation; an empty label (cancelled or empty
-- annotation) withdraws the annotation, so the task falls back to an earlier one or loses its label.
-- task_list, without, store_task: task_labels.lua. The generation is bumped once per task whose label changed.
local labels, ann, task_anns, gen = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local ann_id, task_id, label = ARGV[1], ARGV[2], ARGV[3]
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
