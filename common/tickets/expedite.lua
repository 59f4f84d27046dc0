-- After a Redis restart: bring every unfinished ticket's wake-up forward. A queued ticket's
-- message may have been lost with the crash, a running one's holder may have died: both are
-- due now (the mover sends a queued one, and looks at a running one's holder: a live one
-- keeps it). Retrying tickets keep their wait.
-- KEYS[1]: the delayed set. ARGV: now (epoch s), the ticket key prefix ('<prefix>:ticket:').
local moved = 0
local now = tonumber(ARGV[1])
local members = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #members, 2 do
  local member, score = members[i], tonumber(members[i + 1])
  local ticket = string.match(member, '^([^:]+):')
  if ticket then
    local state = redis.call('HGET', ARGV[2] .. ticket, 'state')
    if (state == 'queued' or state == 'running') and now < score then
      redis.call('ZADD', KEYS[1], now, member)
      moved = moved + 1
    end
  end
end
return moved
