-- A person's label for a task whose label was bulk-accepted: the task is no longer bulk (a person looked),
-- and if it is in the audit sample, the audit verdict is recorded (the label kept or corrected).
-- Returns 'confirmed' or 'corrected' for an audited task, 'reviewed' for another bulk task, false otherwise.
-- KEYS: bulk tasks, audit. ARGV: task id, label.
local accepted = redis.call('HGET', KEYS[1], ARGV[1])
if not accepted then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
local state = redis.call('HGET', KEYS[2], ARGV[1])
if not state then return 'reviewed' end
local verdict = 'confirmed'
if accepted ~= ARGV[2] then verdict = 'corrected' end
redis.call('HSET', KEYS[2], ARGV[1], verdict)
return verdict
