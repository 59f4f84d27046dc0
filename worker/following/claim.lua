-- Claim the followed instances whose round is due: push each one's next round to now + hold,
-- and hand each claim a fencing token (the instance's claim counter), so that one worker of
-- the fleet makes one list call per instance per round, and a round whose claim was taken
-- over (it outlived its hold) can no longer write.
-- KEYS: the follow due set, the fencing tokens (a hash). ARGV: now (epoch s), hold (s), limit.
-- Returns ref, token, ref, token, ...
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local until_ = tonumber(ARGV[1]) + tonumber(ARGV[2])
local out = {}
for _, ref in ipairs(due) do
  redis.call('ZADD', KEYS[1], 'XX', until_, ref)
  out[#out + 1] = ref
  out[#out + 1] = tostring(redis.call('HINCRBY', KEYS[2], ref, 1))
end
return out
