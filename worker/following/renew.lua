-- Keep a round's claim while it runs: push the instance's next round to ARGV[3], if the claim
-- is still this round's (its fencing token). KEYS: the follow due set, the fencing tokens.
-- ARGV: instance ref, token, hold until (epoch s). Returns 1 when renewed, 0 when lost.
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[1])
redis.call('HSET', KEYS[2], 'held ' .. ARGV[1], ARGV[3])
return 1
