-- refresh: keep this relay's presence entries alive.
-- KEYS: (presence string, connection epoch counter) pairs
-- ARGV: node id, ttl (ms), then the epoch of each pair
-- -> for each pair: 1 refreshed, 0 superseded by a newer connection,
--    2 re-created (it had expired: mail may have gone unannounced)
local out = {}
for k = 1, #KEYS, 2 do
  local epoch = ARGV[(k + 1) / 2 + 2]
  local mine = ARGV[1] .. ':' .. epoch
  local v = redis.call('GET', KEYS[k])
  if v == mine then
    redis.call('PEXPIRE', KEYS[k], ARGV[2])
    out[#out + 1] = 1
  elseif tonumber(redis.call('GET', KEYS[k + 1]) or '0') > tonumber(epoch) then
    out[#out + 1] = 0
  else
    redis.call('SET', KEYS[k], mine, 'PX', ARGV[2])
    out[#out + 1] = 2
  end
end
return out
