-- Record one task's state after a round. A final state ends its following.
-- KEYS: the instance's follow hash, the ticket's hash. ARGV: ticket, sync JSON, final ('1'/'0'),
-- the follow entry to keep when not final (JSON).
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], 'sync', ARGV[2])
end
if ARGV[3] == '1' then
  redis.call('HDEL', KEYS[1], ARGV[1])
elseif redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
end
return 1
