-- Schedule an instance's next round, or forget it when nothing is followed there any more;
-- only by the round that holds the instance's claim (a round taken over leaves it to the
-- round that took it over).
-- KEYS: the follow due set, the instance's follow hash, the fencing tokens.
-- ARGV: instance ref, next round (epoch s), token.
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[3] then return 0 end
redis.call('HDEL', KEYS[3], 'held ' .. ARGV[1])  -- the round is over (claim.lua)
if redis.call('HLEN', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
