-- Claim the followed instances whose round is due: push each one's next round to now + hold,
-- so that one worker of the fleet makes one list call per instance per round.
-- KEYS[1]: the follow due set. ARGV: now (epoch s), hold (s), limit.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local until_ = tonumber(ARGV[1]) + tonumber(ARGV[2])
for _, ref in ipairs(due) do
  redis.call('ZADD', KEYS[1], 'XX', until_, ref)
end
return due
