-- Keep the rows of a shared list call as the instance's snapshot, unless a later call's are
-- kept already (a slow lister never replaces a newer snapshot); release the lister's claim.
-- KEYS: the snapshot hash, the lister claim.
-- ARGV: the call's number, token, TTL (s), the number's field, then task name, row JSON, ...
-- Returns 1 when kept, 0 when a later snapshot is there.
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
local kept = tonumber(redis.call('HGET', KEYS[1], ARGV[4]) or '0')
if kept >= tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], ARGV[4], ARGV[1])
for i = 5, #ARGV, 1000 do -- unpack takes a few thousand values at most: in chunks of pairs
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
