-- The same steps as _advance/acquire/penalize in bucket.py, atomically on Redis.
-- KEYS[1]: the bucket's hash. ARGV: now ('' = Redis's clock), rate, burst, horizon, min rate,
-- factor, cooldown, step, interval, op ('acquire' | 'penalize'), retry-after.
-- Returns {granted (1/0), wait in seconds as text}. Writes only the fields that changed.
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1e6
end
local max_rate, burst, horizon = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local min_rate, factor, cooldown = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local step, interval = tonumber(ARGV[8]), tonumber(ARGV[9])
local h = redis.call('HMGET', KEYS[1], 'tokens', 'updated', 'rate', 'raised', 'lowered',
  'blocked_until')
local tokens, updated, rate = tonumber(h[1]), tonumber(h[2]), tonumber(h[3])
local raised, lowered, blocked = tonumber(h[4]), tonumber(h[5]), tonumber(h[6])
if not tokens then
  tokens, updated, rate, raised, lowered, blocked = burst, now, max_rate, now, -1e308, 0
end
if rate < max_rate and now - raised >= interval then
  local steps = math.floor((now - raised) / interval)
  rate = math.min(max_rate, rate + steps * step)
  raised = raised + steps * interval
end
rate = math.min(rate, max_rate)
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
updated = math.max(now, updated)
local granted, wait = 0, 0
if ARGV[10] == 'acquire' then
  if now < blocked then
    wait = blocked - now
  elseif tokens >= 1 then
    tokens, granted = tokens - 1, 1
  else
    wait = (1 - tokens) / rate
    if wait <= horizon then tokens, granted = tokens - 1, 1 end
  end
else
  if now - lowered >= cooldown then
    rate = math.max(min_rate, rate * factor)
    lowered, raised = now, now
  end
  tokens = math.min(tokens, 0)
  blocked = math.max(blocked, now + (tonumber(ARGV[11]) or 0))
end
-- Write only the fields that changed (all of them for a new bucket).
local names = {'tokens', 'updated', 'rate', 'raised', 'lowered', 'blocked_until'}
local values = {tokens, updated, rate, raised, lowered, blocked}
local changed = {}
for i = 1, 6 do
  if not h[i] or tonumber(h[i]) ~= values[i] then
    changed[#changed + 1] = names[i]
    changed[#changed + 1] = values[i]
  end
end
if #changed > 0 then
  redis.call('HSET', KEYS[1], unpack(changed))
  redis.call('EXPIRE', KEYS[1], 86400)
end
return {granted, tostring(wait)}
