-- append: assign the next id, store, tell the relay holding the recipient.
-- KEYS: user hash, mailbox zset, presence string, non-empty mailboxes set
-- ARGV: max envelopes, max bytes, body length, envelope tail
--       (accepted_at u64 BE || len(from) u8 || from || body), user id,
--       this relay's node id, channel prefix
-- -> {0} unknown user | {1} mailbox full | {2, id}
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {0}
end
local n = redis.call('ZCARD', KEYS[2])
local b = tonumber(redis.call('HGET', KEYS[1], 'b') or '0')
local len = tonumber(ARGV[3])
if n >= tonumber(ARGV[1]) or b + len > tonumber(ARGV[2]) then
  return {1}
end
local id = redis.call('HINCRBY', KEYS[1], 'last', 1)
redis.call('HINCRBY', KEYS[1], 'b', len)
local member = struct.pack('>I8', id) .. ARGV[4]
redis.call('ZADD', KEYS[2], id, member)
if n == 0 then
  redis.call('SADD', KEYS[4], ARGV[5])
end
local holder = redis.call('GET', KEYS[3])
if holder then
  local node = string.match(holder, '^([^:]+):')
  if node and node ~= ARGV[6] then
    redis.call('PUBLISH', ARGV[7] .. node, 'm' .. string.char(#ARGV[5]) .. ARGV[5] .. member)
  end
end
return {2, id}
