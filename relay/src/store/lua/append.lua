-- append: a batch of envelopes, in order, each to its recipient's mailbox:
-- assign the next id, store, tell the relay holding the recipient. One
-- script call per batch of the relay's append pump.
-- KEYS: non-empty mailboxes set, then per envelope: user hash, mailbox
--       zset, presence string
-- ARGV: max envelopes, max bytes, this relay's node id, channel prefix,
--       then per envelope: user id, body length, envelope tail
--       (accepted_at u64 BE || len(from) u8 || from || body)
-- -> per envelope: 0 unknown user | -1 mailbox full | the new id (> 0)
local max_n = tonumber(ARGV[1])
local max_b = tonumber(ARGV[2])
local out = {}
for e = 0, (#KEYS - 1) / 3 - 1 do
  local hash, mbox, presence = KEYS[2 + 3 * e], KEYS[3 + 3 * e], KEYS[4 + 3 * e]
  local user, len, tail = ARGV[5 + 3 * e], tonumber(ARGV[6 + 3 * e]), ARGV[7 + 3 * e]
  if redis.call('EXISTS', hash) == 0 then
    out[e + 1] = 0
  else
    local n = redis.call('ZCARD', mbox)
    local b = tonumber(redis.call('HGET', hash, 'b') or '0')
    if n >= max_n or b + len > max_b then
      out[e + 1] = -1
    else
      local id = redis.call('HINCRBY', hash, 'last', 1)
      redis.call('HINCRBY', hash, 'b', len)
      local member = struct.pack('>I8', id) .. tail
      redis.call('ZADD', mbox, id, member)
      if n == 0 then
        redis.call('SADD', KEYS[1], user)
      end
      local holder = redis.call('GET', presence)
      if holder then
        local node = string.match(holder, '^([^:]+):')
        if node and node ~= ARGV[3] then
          redis.call('PUBLISH', ARGV[4] .. node, 'm' .. string.char(#user) .. user .. member)
        end
      end
      out[e + 1] = id
    end
  end
end
return out
