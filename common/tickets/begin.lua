-- KEYS: ticket, delayed set. ARGV: run, now, lease until, now (ISO), holder, watchdog time,
-- ticket id. A ticket held by a live delivery is 'busy'; one whose holder's process is dead
-- is taken over at once, and the answer's 9th value says until when that holder's lease ran
-- (else '0'). alive is alive.lua, composed in as a function (common/scripts.py).
local h = redis.call('HMGET', KEYS[1], 'state', 'run', 'lease_until', 'in_doubt', 'attempts',
  'request', 'created_at', 'holder')
local state = h[1]
if not state then return {'missing'} end
if h[2] ~= ARGV[1] then return {'stale'} end
if state == 'succeeded' or state == 'failed' then return {'done'} end
local dead_lease_until = '0'
if state == 'running' and tonumber(h[3]) > tonumber(ARGV[2]) then
  if alive({KEYS[1]}, {h[8], ARGV[2]}) then return {'busy'} end
  dead_lease_until = h[3]
end
redis.call('HSET', KEYS[1], 'state', 'running', 'lease_until', ARGV[3], 'holder', ARGV[5],
  'updated_at', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[7] .. ':' .. ARGV[1])
return {'ok', h[4], h[5], h[6], h[7], state, '', '', dead_lease_until}
