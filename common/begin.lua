-- KEYS: ticket, delayed set. ARGV: run, now, lease until, now (ISO), holder, watchdog time,
-- ticket id.
local h = redis.call('HMGET', KEYS[1], 'state', 'run', 'lease_until', 'in_doubt', 'attempts',
  'request', 'created_at')
local state = h[1]
if not state then return {'missing'} end
if h[2] ~= ARGV[1] then return {'stale'} end
if state == 'succeeded' or state == 'failed' then return {'done'} end
if state == 'running' and tonumber(h[3]) > tonumber(ARGV[2]) then return {'busy'} end
redis.call('HSET', KEYS[1], 'state', 'running', 'lease_until', ARGV[3], 'holder', ARGV[5],
  'updated_at', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[7] .. ':' .. ARGV[1])
return {'ok', h[4], h[5], h[6], h[7], state}
