-- sweep: delete envelopes accepted before a cutoff, for several users.
-- KEYS: non-empty mailboxes set, then (user hash, mailbox zset) pairs
-- ARGV: cutoff (Unix ms), then the user ids of the pairs
-- -> number deleted
local cutoff = tonumber(ARGV[1])
local total = 0
for k = 2, #KEYS, 2 do
  local user, mbox = KEYS[k], KEYS[k + 1]
  local name = ARGV[k / 2 + 1]
  local freed = 0
  local removed = 0
  local done = false
  while not done do
    local page = redis.call('ZRANGE', mbox, 0, 63)
    if #page == 0 then break end
    for _, m in ipairs(page) do
      -- Ids are assigned in acceptance order; relays' clocks may disagree
      -- slightly, so a younger envelope stops the sweep of this mailbox.
      if struct.unpack('>I8', m, 9) >= cutoff then
        done = true
        break
      end
      redis.call('ZREM', mbox, m)
      freed = freed + #m - 17 - string.byte(m, 17)
      removed = removed + 1
    end
    if #page < 64 then break end
  end
  if removed > 0 and redis.call('EXISTS', user) == 1 then
    redis.call('HINCRBY', user, 'b', -freed)
  end
  if redis.call('ZCARD', mbox) == 0 then
    redis.call('SREM', KEYS[1], name)
  end
  total = total + removed
end
return total
