-- Makes a succeeded ticket whose task failed to sync (and was deleted since) re-drivable:
-- marks it failed, not in doubt (the delete proved the task absent), with why. Nothing else
-- is touched: a ticket in any other state, or whose task did not fail, is left as it is.
-- KEYS: ticket hash. ARGV: error (JSON), now (ISO). Returns 1 when marked, else 0.
if redis.call('HGET', KEYS[1], 'state') ~= 'succeeded' then return 0 end
local sync = redis.call('HGET', KEYS[1], 'sync')
if not sync or cjson.decode(sync)['state'] ~= 'failed' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'failed', 'error', ARGV[1], 'in_doubt', 0,
  'updated_at', ARGV[2])
return 1
