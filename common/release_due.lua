-- Remove a claimed member, unless it was rescheduled since (its score is no longer the claim).
-- KEYS[1]: the delayed set. ARGV: member, the claim's score. Returns 1 when removed, else 0.
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
