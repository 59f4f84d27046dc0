-- KEYS: ticket, failed index, history, queue, delayed set. ARGV: fingerprint, run, now (ISO),
-- ticket id, message, when the watchdog looks if nothing happened (epoch). ARGV[5] is
-- message (pushed onto the queue with the ticket, '' to queue nothing here).
local state = redis.call('HGET', KEYS[1], 'state')
if state and state ~= 'failed' then
  if redis.call('HGET', KEYS[1], 'request') == ARGV[1] then return {'duplicate', state} end
  return {'conflict', state}
end
-- A re-driven ticket keeps its doubt: if a failed run may have created the task, look first.
local in_doubt = '0'
if state then in_doubt = redis.call('HGET', KEYS[1], 'in_doubt') or '1' end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'request', ARGV[1], 'state', 'queued', 'run', ARGV[2],
  'attempts', 0, 'in_doubt', in_doubt, 'reconciled', 0, 'lease_until', 0, 'holder', '',
  'created_at', ARGV[3], 'updated_at', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[4])
redis.call('PERSIST', KEYS[3])
if ARGV[5] ~= '' then redis.call('LPUSH', KEYS[4], ARGV[5]) end
redis.call('ZADD', KEYS[5], ARGV[6], ARGV[4] .. ':' .. ARGV[2])
if state then return {'redriven', 'queued'} end
return {'queued', 'queued'}
