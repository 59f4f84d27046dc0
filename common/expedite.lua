-- After a Redis restart: bring every unfinished ticket's wake-up forward. A queued ticket's
-- message may have been lost with the crash: due now. A running one: due when its lease ends
-- (its worker may still be calling the API). Retrying tickets keep their wait.
-- KEYS[1]: the delayed set. ARGV: now (epoch s), the ticket key prefix ('<prefix>:ticket:').
local moved = 0
local members = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #members, 2 do
  local member, score = members[i], tonumber(members[i + 1])
  local ticket = string.match(member, '^([^:]+):')
  if ticket then
    local h = redis.call('HMGET', ARGV[2] .. ticket, 'state', 'lease_until')
    local due = nil
    if h[1] == 'queued' then
      due = tonumber(ARGV[1])
    elseif h[1] == 'running' then
      due = math.max(tonumber(ARGV[1]), tonumber(h[2] or '0') or 0)
    end
    if due and due < score then
      redis.call('ZADD', KEYS[1], due, member)
      moved = moved + 1
    end
  end
end
return moved
