-- Compare an annotation's label with the prediction served for its task, count the outcome per version
-- (once per served prediction) and add its lead time. Returns the outcome, or false when nothing was
-- served for the task or this served prediction was already evaluated.
-- KEYS: served, eval. ARGV: task id, label, lead time ('' = unknown).
local served, evals = KEYS[1], KEYS[2]
local task_id, label, lead = ARGV[1], ARGV[2], ARGV[3]
local raw = redis.call('HGET', served, task_id)
if not raw then return false end
local s = cjson.decode(raw)
if s['outcome'] or not s['version'] then return false end
local outcome = 'corrected'
if s['label'] == label then outcome = 'accepted' end
local f = s['version'] .. ':' .. outcome
redis.call('HINCRBY', evals, f, 1)
if lead ~= '' then
  redis.call('HINCRBYFLOAT', evals, f .. ':lead_sum', lead)
  redis.call('HINCRBY', evals, f .. ':lead_n', 1)
end
s['outcome'] = outcome
redis.call('HSET', served, task_id, cjson.encode(s))
return outcome
