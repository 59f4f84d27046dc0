-- Records tickets as queued (unless taken) and queues their messages, atomically.
-- KEYS: failed index, delayed set, queue, then each ticket's hash and history.
-- ARGV: now (ISO), when the watchdog looks if nothing happened (epoch), then the batch
-- message's frame: envelope head, envelope tail, body head, body tail ('' when unused), then
-- for each ticket: fingerprint, run, ticket id, message, item, route (its lane and tenant as
-- JSON, kept beside the fingerprint: no part of the request's identity; '' for none).
-- A recorded ticket's own message (unless '') is pushed with it; its item (unless '') joins
-- the one batch message pushed after all: head .. json(body head .. items .. body tail) ..
-- tail, none when no ticket was recorded. A duplicate or a conflict queues nothing.
-- Returns 'outcome state' for each ticket, joined by ',' (one string: cheap to read back).
local function submit(key, history, fingerprint, run, ticket, message, route)
  local state = redis.call('HGET', key, 'state')
  if state and state ~= 'failed' then
    if redis.call('HGET', key, 'request') == fingerprint then return {'duplicate', state} end
    return {'conflict', state}
  end
  -- A re-driven ticket keeps its doubt: if a failed run may have created the task, look first.
  local in_doubt = '0'
  if state then in_doubt = redis.call('HGET', key, 'in_doubt') or '1' end
  redis.call('DEL', key)
  redis.call('HSET', key, 'request', fingerprint, 'state', 'queued', 'run', run,
    'attempts', 0, 'in_doubt', in_doubt, 'reconciled', 0, 'lease_until', 0, 'holder', '',
    'created_at', ARGV[1], 'updated_at', ARGV[1], 'route', route)
  redis.call('ZREM', KEYS[1], ticket)
  redis.call('PERSIST', history)
  if message ~= '' then redis.call('LPUSH', KEYS[3], message) end
  redis.call('ZADD', KEYS[2], ARGV[2], ticket .. ':' .. run)
  if state then return {'redriven', 'queued'} end
  return {'queued', 'queued'}
end

local answers, items = {}, {}
for i = 0, (#KEYS - 3) / 2 - 1 do
  local at = 7 + 6 * i
  local answer = submit(KEYS[4 + 2 * i], KEYS[5 + 2 * i], ARGV[at], ARGV[at + 1], ARGV[at + 2],
    ARGV[at + 3], ARGV[at + 5])
  local recorded = answer[1] == 'queued' or answer[1] == 'redriven'
  if recorded and ARGV[at + 4] ~= '' then items[#items + 1] = ARGV[at + 4] end
  answers[#answers + 1] = answer[1] .. ' ' .. answer[2]
end
if #items > 0 then
  local body = ARGV[5] .. table.concat(items, ',') .. ARGV[6]
  redis.call('LPUSH', KEYS[3], ARGV[3] .. cjson.encode(body) .. ARGV[4])
end
return table.concat(answers, ',')
