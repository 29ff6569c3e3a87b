-- last_seen: record the user's last disconnect (a registered user's only).
-- KEYS: user hash
-- ARGV: Unix ms
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'ls', ARGV[1])
return 1
