-- Compare an annotation's label with the prediction served for its task, count the outcome per version
-- (once per served prediction) and add its lead time and, per score bin, the outcome and the score.
-- Returns the outcome, or false when nothing was served for the task or this served prediction was
-- already evaluated. A bulk-accepted annotation (made from the prediction itself, no person looked) is
-- no evidence: it only marks the suggestion as 'bulk' (counted apart), so a later edit does not count.
-- KEYS: served, eval. ARGV: task id, label, lead time ('' = unknown), '1' if bulk-accepted else ''.
local served, evals = KEYS[1], KEYS[2]
local task_id, label, lead, bulk = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local raw = redis.call('HGET', served, task_id)
if not raw then return false end
local s = cjson.decode(raw)
if s['outcome'] or not s['version'] then return false end
if bulk == '1' then
  redis.call('HINCRBY', evals, s['version'] .. ':bulk', 1)
  s['outcome'] = 'bulk'
  redis.call('HSET', served, task_id, cjson.encode(s))
  return 'bulk'
end
local outcome = 'corrected'
if s['label'] == label then outcome = 'accepted' end
local f = s['version'] .. ':' .. outcome
redis.call('HINCRBY', evals, f, 1)
if lead ~= '' then
  redis.call('HINCRBYFLOAT', evals, f .. ':lead_sum', lead)
  redis.call('HINCRBY', evals, f .. ':lead_n', 1)
end
if s['bin'] and s['score'] then
  local b = s['version'] .. ':bin:' .. s['bin'] .. ':'
  redis.call('HINCRBY', evals, b .. outcome, 1)
  redis.call('HINCRBYFLOAT', evals, b .. 'score_sum', tostring(s['score']))
end
s['outcome'] = outcome
redis.call('HSET', served, task_id, cjson.encode(s))
return outcome
