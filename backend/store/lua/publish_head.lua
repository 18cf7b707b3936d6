-- Publish a head if it is newer than the head served now; returns the new version string, or false.
-- The rule, in words, is in backend/store/heads.py (publish_head).
-- KEYS: current, heads, history, vseq, enc:current.
-- ARGV: head key prefix, blob, meta JSON, label generation, versions to keep.
local current, heads, history, vseq, enc_current = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local head_prefix, blob, meta_json, gen, keep = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local meta = cjson.decode(meta_json)
local enc = meta['encoder_version']
local live_enc = redis.call('GET', enc_current)
if enc and live_enc and enc ~= live_enc then return false end
local cur = redis.call('GET', current)
if cur then
  local cur_meta = redis.call('HGET', heads, cur)
  if cur_meta then
    local c = cjson.decode(cur_meta)
    local g = tonumber(c['generation'] or -1)
    if g > gen then return false end
    if g == gen and c['encoder_version'] == enc and c['head'] == meta['head']
       and tonumber(c['snapshot'] or 0) >= tonumber(meta['snapshot'] or 0) then return false end
  end
end
local n = redis.call('INCR', vseq)
local version = 'v' .. n
meta['version'] = version
redis.call('SET', head_prefix .. version, blob)
redis.call('HSET', heads, version, cjson.encode(meta))
redis.call('SET', current, version)
redis.call('LPUSH', history, version)
local old = redis.call('LRANGE', history, keep, -1)
for _, v in ipairs(old) do
  redis.call('DEL', head_prefix .. v)
  redis.call('HDEL', heads, v)
end
redis.call('LTRIM', history, 0, keep - 1)
return version
