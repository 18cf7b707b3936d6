-- Functions shared by record_annotation.lua and delete_annotations.lua (scripts.py puts this file in
-- front of them). A task keeps the list of its annotations, oldest first ([[annotation id, label], ...]);
-- its label is the label of the latest one, and it has none when the list is empty.
local function task_list(task_anns, t)
  local raw = redis.call('HGET', task_anns, t)
  if raw then return cjson.decode(raw) end
  return {}
end
local function without(list, a)
  local out = {}
  for _, e in ipairs(list) do if tostring(e[1]) ~= a then table.insert(out, e) end end
  return out
end
-- Save a task's annotation list and the label it implies; returns 1 when the task's label changed.
local function store_task(labels, task_anns, t, list)
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
  if old ~= new then return 1 end
  return 0
end
