-- Record one task's state after a round. A final state ends its following.
-- Written only by the round that holds the instance's claim (its fencing token), and only for
-- a ticket still followed there: a late round never overwrites a final verdict, nor puts back
-- a ticket that left the follow set.
-- KEYS: the instance's follow hash, the ticket's hash, the fencing tokens. ARGV: ticket, sync
-- JSON, final ('1'/'0'), the follow entry to keep when not final (JSON), instance ref, token.
-- Returns 1 when written, 0 when refused.
if redis.call('HGET', KEYS[3], ARGV[5]) ~= ARGV[6] then return 0 end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], 'sync', ARGV[2])
end
if ARGV[3] == '1' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
end
return 1
