-- append: a batch of envelopes, in order, each to its recipient's mailbox:
-- assign the next id, store, tell the relay holding the recipient. One
-- script call per batch of the relay's append pump. A recipient's record
-- (id counter, bytes, mailbox depth, holder) is read once per batch and
-- written once at its end, and each holding relay gets one message for the
-- whole batch: per envelope, Redis runs one ZADD.
-- KEYS: non-empty mailboxes set, then per envelope: user hash, mailbox
--       zset, presence string
-- ARGV: max envelopes, max bytes, this relay's node id, channel prefix,
--       then per envelope: user id, body length, envelope tail
--       (accepted_at u64 BE || len(from) u8 || from || body)
-- -> per envelope: 0 unknown user | -1 mailbox full | the new id (> 0)
-- Publishes on each holder's channel: 'M' then, per envelope, len(user) u8
-- || user || len(member) u32 BE || member.
local max_n = tonumber(ARGV[1])
local max_b = tonumber(ARGV[2])
local users = {}
local order = {}
local news = {}
local out = {}
for e = 0, (#KEYS - 1) / 3 - 1 do
  local hash, mbox, presence = KEYS[2 + 3 * e], KEYS[3 + 3 * e], KEYS[4 + 3 * e]
  local user, len, tail = ARGV[5 + 3 * e], tonumber(ARGV[6 + 3 * e]), ARGV[7 + 3 * e]
  local u = users[user]
  if u == nil then
    local r = redis.call('HMGET', hash, 'ik', 'last', 'b')
    if not r[1] then
      u = false
    else
      local holder = redis.call('GET', presence)
      local node = holder and string.match(holder, '^([^:]+):')
      u = {
        hash = hash,
        last = tonumber(r[2] or '0'),
        b = tonumber(r[3] or '0'),
        n = redis.call('ZCARD', mbox),
        node = (node and node ~= ARGV[3]) and node or nil,
        changed = false,
      }
    end
    users[user] = u
    order[#order + 1] = user
  end
  if not u then
    out[e + 1] = 0
  elseif u.n >= max_n or u.b + len > max_b then
    out[e + 1] = -1
  else
    u.last = u.last + 1
    u.b = u.b + len
    local member = struct.pack('>I8', u.last) .. tail
    redis.call('ZADD', mbox, u.last, member)
    if u.n == 0 then
      redis.call('SADD', KEYS[1], user)
    end
    u.n = u.n + 1
    u.changed = true
    if u.node then
      local msgs = news[u.node]
      if msgs == nil then
        msgs = {'M'}
        news[u.node] = msgs
      end
      msgs[#msgs + 1] = string.char(#user) .. user .. struct.pack('>I4', #member) .. member
    end
    out[e + 1] = u.last
  end
end
for _, user in ipairs(order) do
  local u = users[user]
  if u and u.changed then
    redis.call('HSET', u.hash, 'last', string.format('%d', u.last), 'b', string.format('%d', u.b))
  end
end
for node, msgs in pairs(news) do
  redis.call('PUBLISH', ARGV[4] .. node, table.concat(msgs))
end
return out
