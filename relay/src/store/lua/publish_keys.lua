-- publish_keys
-- KEYS: user hash, one-time prekeys zset
-- ARGV: max stored, published keys blob, then (id, member) pairs
-- -> {-1} unknown user | {0, would_store} too many | {1, stored}
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {-1}
end
local fresh = {}
local nfresh = 0
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  if not fresh[id] and redis.call('ZCOUNT', KEYS[2], id, id) == 0 then
    fresh[id] = true
    nfresh = nfresh + 1
  end
end
local would = redis.call('ZCARD', KEYS[2]) + nfresh
if would > tonumber(ARGV[1]) then
  return {0, would}
end
redis.call('HSET', KEYS[1], 'keys', ARGV[2])
for i = 3, #ARGV, 2 do
  redis.call('ZREMRANGEBYSCORE', KEYS[2], ARGV[i], ARGV[i])
  redis.call('ZADD', KEYS[2], ARGV[i], ARGV[i + 1])
end
return {1, redis.call('ZCARD', KEYS[2])}
