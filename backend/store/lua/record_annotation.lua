-- Record (or replace) what one annotation says about its task; returns 1 when the task's label changed.
-- KEYS: labels, ann, task_anns, gen, touch_seq, touched (keys.label_keys).
-- ARGV: annotation id, task id, label ('' = none), guard ('' = a webhook: stamp the change; a number = a
-- reconcile: write only if no webhook changed this annotation after that stamp, and leave no stamp).
-- A task's label is the label of its latest recorded annotation; an empty label (cancelled or empty
-- annotation) withdraws the annotation, so the task falls back to an earlier one or loses its label.
local labels, ann, task_anns, gen, touch_seq, touched = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local ann_id, task_id, label, guard = ARGV[1], ARGV[2], ARGV[3], ARGV[4] or ''
if guard ~= '' then
  local stamp = tonumber(redis.call('HGET', touched, ann_id) or '0')
  if stamp > tonumber(guard) then return 0 end
else
  redis.call('HSET', touched, ann_id, redis.call('INCR', touch_seq))
end
local function load(t)
  local raw = redis.call('HGET', task_anns, t)
  if raw then return cjson.decode(raw) end
  return {}
end
local function store_task(t, list)
  local old = redis.call('HGET', labels, t)
  local new = false
  if #list == 0 then
    redis.call('HDEL', task_anns, t)
    redis.call('HDEL', labels, t)
  else
    redis.call('HSET', task_anns, t, cjson.encode(list))
    new = list[#list][2]
    redis.call('HSET', labels, t, new)
  end
  if old ~= new then redis.call('INCR', gen) return 1 end
  return 0
end
local function without(list, a)
  local out = {}
  for _, e in ipairs(list) do if tostring(e[1]) ~= a then table.insert(out, e) end end
  return out
end
local changed = 0
local prev_task = redis.call('HGET', ann, ann_id)
if prev_task and prev_task ~= task_id then
  changed = changed + store_task(prev_task, without(load(prev_task), ann_id))
end
local list = without(load(task_id), ann_id)
if label ~= '' then
  table.insert(list, {ann_id, label})
  redis.call('HSET', ann, ann_id, task_id)
else
  redis.call('HDEL', ann, ann_id)
end
changed = changed + store_task(task_id, list)
return changed
