-- presence_allow: replace the user's presence allow list (a registered
-- user's only).
-- KEYS: user hash, allow set
-- ARGV: the allowed user ids (distinct)
-- -> 1 if the user exists
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('DEL', KEYS[2])
local i = 1
while i <= #ARGV do
  local j = math.min(i + 499, #ARGV)
  redis.call('SADD', KEYS[2], unpack(ARGV, i, j))
  i = j + 1
end
return 1
