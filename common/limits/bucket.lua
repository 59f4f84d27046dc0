-- The same steps as _advance/acquire/penalize in bucket.py, atomically on Redis.
-- KEYS[1]: the bucket's hash. ARGV: now ('' = Redis's clock), rate, burst, horizon, min rate,
-- factor, cooldown, step, interval, op ('acquire' | 'penalize'), retry-after; on 'acquire',
-- ARGV[11] may instead be a lane's ask, 'lane min_share horizon tenant weight' (the steps of
-- bucket_lanes.py: how far ahead the ask may reserve; its fields si, sb, st, bw, v:<tenant>
-- and a:<tenant> sit in the same hash).
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
-- Lanes (bucket_lanes.py): the same constants.
local SHARE_WINDOW_S, TENANT_ACTIVE_S, TENANT_FORGET_S, BULK_WAITING_S = 10.0, 5.0, 60.0, 5.0
local ask = nil
if ARGV[10] == 'acquire' and string.find(ARGV[11] or '', ' ', 1, true) then
  local p = {}
  for word in string.gmatch(ARGV[11], '%S+') do p[#p + 1] = word end
  ask = {lane = p[1], min_share = tonumber(p[2]), horizon = tonumber(p[3]), tenant = p[4],
    weight = tonumber(p[5])}
end
if ARGV[10] == 'acquire' then
  if now < blocked then
    wait = blocked - now
  else
    local reach, L, virtual, seen = horizon, nil, 0, {}
    if ask then
      local all = redis.call('HGETALL', KEYS[1])
      local f = {}
      for i = 1, #all, 2 do f[all[i]] = all[i + 1] end
      L = {si = tonumber(f['si']) or 0, sb = tonumber(f['sb']) or 0, st = tonumber(f['st']) or 0,
        bw = tonumber(f['bw']) or 0}
      local factor = math.exp(-math.max(0, now - L.st) / SHARE_WINDOW_S)
      L.si, L.sb, L.st = L.si * factor, L.sb * factor, math.max(now, L.st)
      local starved = ask.min_share > 0 and now < L.bw
        and L.sb < ask.min_share * (L.si + L.sb)
      if ask.lane == 'interactive' then
        if starved then reach = horizon else reach = ask.horizon end
      else
        local lane_s = horizon
        if starved then lane_s = ask.horizon + horizon end
        local least = nil
        for name, value in pairs(f) do
          if string.sub(name, 1, 2) == 'v:' then
            local who = string.sub(name, 3)
            local active = tonumber(f['a:' .. who]) or 0
            seen[who] = active
            if who ~= ask.tenant and active > now then
              local v = tonumber(value)
              if least == nil or v < least then least = v end
            end
          end
        end
        local v = tonumber(f['v:' .. ask.tenant])
        if v == nil or (tonumber(f['a:' .. ask.tenant]) or 0) <= now then
          v = math.max(v or 0, least or 0)
        end
        virtual = v
        if least == nil or v <= least then reach = lane_s else reach = 0 end
      end
    end
    if tokens >= 1 then
      granted = 1
    else
      wait = (1 - tokens) / rate
      if wait <= reach then
        granted = 1
      elseif ask and ask.lane == 'bulk' then
        wait = math.max(wait, horizon)
      end
    end
    if granted == 1 then tokens = tokens - 1 end
    if ask then
      local out = {'st', L.st}
      if ask.lane == 'interactive' then
        if granted == 1 then L.si = L.si + 1 end
      else
        if granted == 1 then
          L.sb = L.sb + 1
          virtual = virtual + 1 / ask.weight
        else
          out[#out + 1], out[#out + 2] = 'bw', now + BULK_WAITING_S
        end
        out[#out + 1], out[#out + 2] = 'v:' .. ask.tenant, virtual
        out[#out + 1], out[#out + 2] = 'a:' .. ask.tenant, now + TENANT_ACTIVE_S
        for who, active in pairs(seen) do
          if who ~= ask.tenant and active <= now - TENANT_FORGET_S then
            redis.call('HDEL', KEYS[1], 'v:' .. who, 'a:' .. who)
          end
        end
      end
      out[#out + 1], out[#out + 2] = 'si', L.si
      out[#out + 1], out[#out + 2] = 'sb', L.sb
      redis.call('HSET', KEYS[1], unpack(out))
    end
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
