-- Claim the followed instances whose round is due: push each one's next round to now + hold,
-- and hand each claim a fencing token (the instance's claim counter), so that one worker of
-- the fleet makes one list call per instance per round, and a round whose claim was taken
-- over (it outlived its hold) can no longer write.
-- The hold is also kept beside the token (field 'held <ref>'): a ticket enrolled while a
-- round runs brings its instance's next round forward (ZADD LT), which must not hand the
-- instance to a second round while the first one holds it; it is due when that hold ends.
-- KEYS: the follow due set, the fencing tokens (a hash). ARGV: now (epoch s), hold (s), limit.
-- Returns ref, token, ref, token, ...
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local now = tonumber(ARGV[1])
local until_ = now + tonumber(ARGV[2])
local out = {}
for _, ref in ipairs(due) do
  local held = tonumber(redis.call('HGET', KEYS[2], 'held ' .. ref))
  if held and held > now then
    redis.call('ZADD', KEYS[1], 'XX', held, ref)
  else
    redis.call('ZADD', KEYS[1], 'XX', until_, ref)
    redis.call('HSET', KEYS[2], 'held ' .. ref, until_)
    out[#out + 1] = ref
    out[#out + 1] = tostring(redis.call('HINCRBY', KEYS[2], ref, 1))
  end
end
return out
