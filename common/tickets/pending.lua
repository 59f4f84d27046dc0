-- KEYS: ticket. ARGV: run, now. What the mover should do with an unfinished ticket of this
-- run that fell due: {state, request, route}, where state is 'held' (a live delivery holds it: look
-- again later), 'waiting' (queued, and waited on purpose: send it now), or the ticket's state
-- ('queued', 'running' with its holder dead or its lease over, 'retrying'); else nil.
-- alive is alive.lua, composed in as a function (common/scripts.py).
local h = redis.call('HMGET', KEYS[1], 'state', 'run', 'request', 'lease_until', 'holder',
  'waiting', 'route')
local route = h[7] or ''
local state = h[1]
if h[2] ~= ARGV[1] then return false end
if state == 'running' then
  local leased = tonumber(h[4] or '0') > tonumber(ARGV[2])
  if leased and alive({KEYS[1]}, {h[5], ARGV[2]}) then return {'held', h[3], route} end
  return {state, h[3], route}
end
if state == 'queued' and h[6] == '1' then return {'waiting', h[3], route} end
if state == 'retrying' or state == 'queued' then return {state, h[3], route} end
return false
