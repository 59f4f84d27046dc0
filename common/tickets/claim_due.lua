-- Claim up to ARGV[3] due members of the delayed set: push their score to the claim time.
-- KEYS[1]: the delayed set. ARGV: now, the claim's score, limit. Returns the members claimed.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], member) end
return due
