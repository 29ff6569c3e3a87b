-- fetch_bundle: the bundle with the lowest one-time prekey, popped.
-- KEYS: user hash, one-time prekeys zset
-- -> {} unknown or no keys | {identity key, keys blob, opk member or '', remaining}
local v = redis.call('HMGET', KEYS[1], 'ik', 'keys')
if not v[1] or not v[2] then
  return {}
end
local p = redis.call('ZPOPMIN', KEYS[2])
return {v[1], v[2], p[1] or '', redis.call('ZCARD', KEYS[2])}
