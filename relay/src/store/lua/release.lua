-- release: the connection closed; forget its presence if it is still ours.
-- KEYS: presence string
-- ARGV: "node:epoch"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
