-- Schedule an instance's next round, or forget it when nothing is followed there any more.
-- KEYS: the follow due set, the instance's follow hash. ARGV: instance ref, next round (epoch s).
if redis.call('HLEN', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
