-- register_or_authenticate
-- KEYS: user hash, one-time prekeys zset, mailbox zset, user counter
-- ARGV: identity key (32 bytes)
-- -> {-1} key mismatch | {registered 0/1, one_time_prekeys, has_keys 0/1, last_queued}
local ik = redis.call('HGET', KEYS[1], 'ik')
if not ik then
  redis.call('HSET', KEYS[1], 'ik', ARGV[1], 'last', 0, 'b', 0)
  redis.call('INCR', KEYS[4])
  return {1, 0, 0, 0}
end
if ik ~= ARGV[1] then
  return {-1}
end
local has = redis.call('HEXISTS', KEYS[1], 'keys')
local last = 0
local top = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
if top[2] then
  last = tonumber(top[2])
end
return {0, redis.call('ZCARD', KEYS[2]), has, last}
