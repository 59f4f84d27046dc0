-- Remove a claimed member, or (ARGV[3] given) move it to the score ARGV[3], unless it was
-- rescheduled since (its score is no longer the claim): one step, so that a mover dying
-- midway never loses the member.
-- KEYS[1]: the delayed set. ARGV: member, the claim's score[, the new score].
-- Returns 1 when removed or moved, else 0.
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then return 0 end
if ARGV[3] then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  return 1
end
return redis.call('ZREM', KEYS[1], ARGV[1])
