-- Sends a bulk ticket again (fair_feed.py requeue), in one atomic step.
-- KEYS[1]: the interactive queue; KEYS[2]: the bulk queue; KEYS[3]: the ticket's tenant's
-- queue; KEYS[4]: the set of tenants with messages waiting. ARGV[1]: the message; ARGV[2]:
-- the tenant. While interactive messages wait, the ticket goes to the head of the bulk queue:
-- the next lifted (feed.lua), never ahead of the interactive messages. Else it goes to the
-- back of its tenant's queue, fed again fairly. Returns 1 for the bulk queue, 0 for the
-- tenant's.
if redis.call('LLEN', KEYS[1]) > 0 then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  return 1
end
redis.call('LPUSH', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[2])
return 0
