-- Feeds the bulk lane's queue from the tenants' own queues, weighted round-robin, keeping it
-- no deeper than a target (fair_feed.py).
-- KEYS[1]: the bulk queue; KEYS[2]: the set of tenants with messages waiting; KEYS[3]: each
-- tenant's virtual time (a hash). ARGV[1]: the target depth; ARGV[2]: the prefix of the
-- tenants' queue keys (the tenant's name follows); ARGV[3]: weights 'a=2,b=1' ('' for none).
-- The tenant with the least virtual time goes next, and its time grows by 1/weight a
-- message. A tenant whose queue is empty leaves the set and forgets its time; one that comes
-- back starts level with the least of the others (no credit saved up while away).
-- Bulk's minimum share of the slots: while interactive messages wait in KEYS[4] (the
-- interactive queue), workers take that queue first and never the bulk queue; so bulk
-- messages (the oldest first) go to the head of the interactive queue at ARGV[4] messages a
-- second (0: never), a batch counting as one. The lift only lets bulk tickets reach a worker;
-- the token bucket holds them to bulk's share of the tokens (bucket_lanes.py), and a lifted
-- ticket it refuses comes back to the head of the bulk queue (resend.lua), to be lifted
-- again. The credit (at most ARGV[5] messages) and the time it was counted are the hash's
-- fields '@credit' and '@lift' (no tenant's name has an '@'); none builds up while no
-- interactive message waits.
-- Returns how many messages were moved from the tenants' queues.
local per_s = tonumber(ARGV[4])
if per_s > 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
  local state = redis.call('HMGET', KEYS[3], '@lift', '@credit')
  local credit = 0
  if redis.call('LLEN', KEYS[4]) > 0 and state[1] then
    local last, held = tonumber(state[1]), tonumber(state[2]) or 0
    credit = math.min(tonumber(ARGV[5]), held + math.max(0, now - last) * per_s)
    while credit > 0 do
      local message = redis.call('RPOP', KEYS[1])
      if not message then break end
      redis.call('RPUSH', KEYS[4], message)
      credit = credit - 1
    end
  end
  redis.call('HSET', KEYS[3], '@lift', now, '@credit', credit)
end
local room = tonumber(ARGV[1]) - redis.call('LLEN', KEYS[1])
if room <= 0 then return 0 end
local live = redis.call('SMEMBERS', KEYS[2])
if #live == 0 then return 0 end
local weights = {}
for name, weight in string.gmatch(ARGV[3], '([^,=]+)=([^,]+)') do
  weights[name] = tonumber(weight)
end
local v, least = {}, nil
for _, name in ipairs(live) do
  v[name] = tonumber(redis.call('HGET', KEYS[3], name))
  if v[name] and (least == nil or v[name] < least) then least = v[name] end
end
for _, name in ipairs(live) do v[name] = v[name] or least or 0 end
local moved = 0
while room > 0 and #live > 0 do
  local at = 1
  for i = 2, #live do
    local name, best = live[i], live[at]
    if v[name] < v[best] or (v[name] == v[best] and name < best) then at = i end
  end
  local name = live[at]
  local message = redis.call('RPOP', ARGV[2] .. name)
  if message then
    redis.call('LPUSH', KEYS[1], message)
    v[name] = v[name] + 1 / (weights[name] or 1)
    room, moved = room - 1, moved + 1
  else
    redis.call('SREM', KEYS[2], name)
    redis.call('HDEL', KEYS[3], name)
    table.remove(live, at)
  end
end
for _, name in ipairs(live) do redis.call('HSET', KEYS[3], name, v[name]) end
return moved
