-- forward: hand a frame to the relay holding the user, if any.
-- KEYS: presence string
-- ARGV: node id, message, channel prefix
local holder = redis.call('GET', KEYS[1])
if holder then
  local node = string.match(holder, '^([^:]+):')
  if node and node ~= ARGV[1] then
    return redis.call('PUBLISH', ARGV[3] .. node, ARGV[2])
  end
end
return 0
