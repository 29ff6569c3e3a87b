-- claim: a new connection of the user on this relay; the previous holder
-- (on another relay) is told to close its older connection.
-- KEYS: presence string, connection epoch counter
-- ARGV: node id, presence ttl (ms), user id, channel prefix
-- -> this connection's epoch
local e = redis.call('INCR', KEYS[2])
local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. e, 'PX', ARGV[2])
if old then
  local node = string.match(old, '^([^:]+):')
  if node and node ~= ARGV[1] then
    redis.call('PUBLISH', ARGV[4] .. node, 'k' .. string.char(#ARGV[3]) .. ARGV[3] .. struct.pack('>I8', e))
  end
end
return e
