-- ack: delete these ids from the user's own mailbox.
-- KEYS: user hash, mailbox zset, non-empty mailboxes set
-- ARGV: user id, then envelope ids
-- -> number deleted
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local removed = 0
local freed = 0
for i = 2, #ARGV do
  local m = redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[i], ARGV[i])
  if m[1] then
    redis.call('ZREM', KEYS[2], m[1])
    -- member: id u64 || accepted_at u64 || len(from) u8 || from || body
    freed = freed + #m[1] - 17 - string.byte(m[1], 17)
    removed = removed + 1
  end
end
if removed > 0 then
  redis.call('HINCRBY', KEYS[1], 'b', -freed)
  if redis.call('ZCARD', KEYS[2]) == 0 then
    redis.call('SREM', KEYS[3], ARGV[1])
  end
end
return removed
