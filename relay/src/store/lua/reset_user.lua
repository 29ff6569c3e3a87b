-- reset_user: delete the user, its keys, mailbox and counter; close its
-- live connection wherever it is.
-- KEYS: user hash, one-time prekeys zset, mailbox zset, non-empty set,
--       user counter, presence string, connection epoch counter,
--       presence allow set
-- ARGV: user id, channel prefix
-- -> 1 if the user existed
local existed = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2], KEYS[3], KEYS[8])
redis.call('SREM', KEYS[4], ARGV[1])
if existed == 1 then
  redis.call('DECR', KEYS[5])
end
local e = redis.call('INCR', KEYS[7])
local holder = redis.call('GET', KEYS[6])
if holder then
  local node = string.match(holder, '^([^:]+):')
  if node then
    redis.call('PUBLISH', ARGV[2] .. node, 'k' .. string.char(#ARGV[1]) .. ARGV[1] .. struct.pack('>I8', e))
  end
  redis.call('DEL', KEYS[6])
end
return existed
