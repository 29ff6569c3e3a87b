-- ack: delete these ids from the user's own mailbox.
-- KEYS: user hash, mailbox zset, non-empty mailboxes set
-- ARGV: user id, then envelope ids
-- -> number deleted
--
-- Ids acknowledged together are nearly always consecutive (a client acks
-- what it was pushed, in order): then one range read finds them all and
-- one ZREM per 1000 deletes them, instead of a read and a delete per id.
-- Scattered ids (a span over twice their number) are looked up one by one.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local want = {}
local count = 0
local lo, hi
for i = 2, #ARGV do
  local id = tonumber(ARGV[i])
  if id and not want[id] then
    want[id] = true
    count = count + 1
    if lo == nil or id < lo then lo = id end
    if hi == nil or id > hi then hi = id end
  end
end
if count == 0 then
  return 0
end
local found = {}
if hi - lo + 1 <= 2 * count then
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], lo, hi)) do
    if want[struct.unpack('>I8', m)] then
      found[#found + 1] = m
    end
  end
else
  for id in pairs(want) do
    local m = redis.call('ZRANGEBYSCORE', KEYS[2], id, id)
    if m[1] then
      found[#found + 1] = m[1]
    end
  end
end
if #found == 0 then
  return 0
end
local freed = 0
for _, m in ipairs(found) do
  -- member: id u64 || accepted_at u64 || len(from) u8 || from || body
  freed = freed + #m - 17 - string.byte(m, 17)
end
for i = 1, #found, 1000 do
  redis.call('ZREM', KEYS[2], unpack(found, i, math.min(i + 999, #found)))
end
redis.call('HINCRBY', KEYS[1], 'b', -freed)
if redis.call('ZCARD', KEYS[2]) == 0 then
  redis.call('SREM', KEYS[3], ARGV[1])
end
return #found
