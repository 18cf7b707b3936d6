-- Record (or replace) what one annotation says about its task; returns 1 when the task's label changed.
-- KEYS: labels, ann, task_anns, gen (keys.label_keys). ARGV: annotation id, task id, label ('' = none).
-- A task's label is the label of its latest recorded annotation; an empty label (cancelled or empty
-- annotation) withdraws the annotation, so the task falls back to an earlier one or loses its label.
local labels, ann, task_anns, gen = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local ann_id, task_id, label = ARGV[1], ARGV[2], ARGV[3]
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
