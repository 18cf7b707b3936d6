-- Forget annotations by id (Label Studio's delete webhook carries only ids); returns how many task
-- labels changed. The generation is bumped once when any did.
-- Every deleted id is stamped as changed by a webhook (a reconcile that began earlier leaves it alone).
-- KEYS: labels, ann, task_anns, gen, touch_seq, touched (keys.label_keys). ARGV: annotation ids.
local labels, ann, task_anns, gen, touch_seq, touched = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local changed = 0
for _, ann_id in ipairs(ARGV) do
  redis.call('HSET', touched, ann_id, redis.call('INCR', touch_seq))
  local task_id = redis.call('HGET', ann, ann_id)
  if task_id then
    redis.call('HDEL', ann, ann_id)
    local raw = redis.call('HGET', task_anns, task_id)
    local list = {}
    if raw then
      for _, e in ipairs(cjson.decode(raw)) do
        if tostring(e[1]) ~= ann_id then table.insert(list, e) end
      end
    end
    local old = redis.call('HGET', labels, task_id)
    local new = false
    if #list == 0 then
      redis.call('HDEL', task_anns, task_id)
      redis.call('HDEL', labels, task_id)
    else
      redis.call('HSET', task_anns, task_id, cjson.encode(list))
      new = list[#list][2]
      redis.call('HSET', labels, task_id, new)
    end
    if old ~= new then changed = changed + 1 end
  end
end
if changed > 0 then redis.call('INCR', gen) end
return changed
