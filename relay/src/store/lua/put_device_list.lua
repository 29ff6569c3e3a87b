-- put_device_list: store an account's device list if it is newer.
-- KEYS: device list hash (fields `v`: version as 20 decimal digits, so
--       string order is numeric order; `list`: the list's JSON)
-- ARGV: version (20 digits), list JSON
-- -> {1} stored | {0, current list JSON}
local v = redis.call('HGET', KEYS[1], 'v')
if v and v >= ARGV[1] then
  return {0, redis.call('HGET', KEYS[1], 'list')}
end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'list', ARGV[2])
return {1}
