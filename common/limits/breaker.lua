-- allow() and record() of breaker.py, atomically on Redis. KEYS[1]: the breaker's hash.
-- ARGV: now ('' = Redis's clock), threshold, cooldown, probes, probe timeout,
-- op ('allow' | 'ok' | 'fail'). Returns the seconds to wait (0: go), as text.
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1e6
end
local threshold, cooldown = tonumber(ARGV[2]), tonumber(ARGV[3])
local probes, probe_timeout = tonumber(ARGV[4]), tonumber(ARGV[5])
local h = redis.call('HMGET', KEYS[1], 'state', 'failures', 'open_until', 'granted',
  'successes', 'half_open_at', 'opened')
local state = h[1] or 'closed'
local failures, open_until = tonumber(h[2]) or 0, tonumber(h[3]) or 0
local granted, successes = tonumber(h[4]) or 0, tonumber(h[5]) or 0
local half_open_at, opened = tonumber(h[6]) or 0, tonumber(h[7]) or 0
local wait = 0
local function open()
  state, failures, open_until, granted, successes, half_open_at = 'open', 0, now + cooldown, 0, 0, 0
  opened = opened + 1
end
if ARGV[6] == 'allow' then
  if state == 'open' and now < open_until then
    wait = open_until - now
  else
    if state == 'open' then state, granted, successes, half_open_at = 'half_open', 0, 0, now end
    if state == 'half_open' then
      if granted >= probes and now - half_open_at < probe_timeout then
        -- Look again within a second (breaker.py's HALF_OPEN_RECHECK_S), not when the probes
        -- would time out: a closing breaker must let the fleet go at once.
        wait = math.max(0.1, math.min(probe_timeout - (now - half_open_at), 1.0))
      else
        if granted >= probes then granted, half_open_at = 0, now end
        granted = granted + 1
      end
    end
  end
elseif state == 'closed' then
  if ARGV[6] == 'ok' then failures = 0 else
    failures = failures + 1
    if failures >= threshold then open() end
  end
elseif state == 'half_open' then
  if ARGV[6] == 'fail' then open() else
    successes = successes + 1
    if successes >= probes then
      state, failures, open_until, granted, successes, half_open_at = 'closed', 0, 0, 0, 0, 0
    end
  end
end
-- Write only what changed: a closed breaker that hears a success (the common case) is not
-- written at all; a missing hash reads as closed, so it is created only by a change.
local names = {'state', 'failures', 'open_until', 'granted', 'successes', 'half_open_at',
  'opened'}
local values = {state, failures, open_until, granted, successes, half_open_at, opened}
local defaults = {'closed', 0, 0, 0, 0, 0, 0}
local changed, differs = {}, false
for i = 1, 7 do
  local was = h[i]
  if i > 1 and was then was = tonumber(was) end
  if (was or defaults[i]) ~= values[i] then differs = true end
  if not h[1] or was ~= values[i] then
    changed[#changed + 1] = names[i]
    changed[#changed + 1] = values[i]
  end
end
if differs then
  redis.call('HSET', KEYS[1], unpack(changed))
  redis.call('EXPIRE', KEYS[1], 86400)
end
return tostring(wait)
