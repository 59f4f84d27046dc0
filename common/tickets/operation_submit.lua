-- Records an operation's ticket as queued (unless taken) and queues its message, atomically.
-- KEYS: ticket hash, history, failed index, delayed set, queue, the instance's list counter.
-- ARGV: now (ISO), when the watchdog looks if nothing happened (epoch), fingerprint, run,
-- ticket id, message, and '1' when a succeeded ticket of the same operation is queued again
-- (pause, resume, delete: its worker looks first) or '0' (modify: the same change is done).
-- An operation in flight keeps its ticket: the same one is a duplicate, another a conflict.
-- A failed or succeeded one is replaced (a fresh run, no doubt: every run looks first).
-- The ticket notes the counter (look_after): its first look uses a list call made after it.
-- Returns 'outcome state'.
local key, history = KEYS[1], KEYS[2]
local state = redis.call('HGET', key, 'state')
local same = state and redis.call('HGET', key, 'request') == ARGV[3]
if state and state ~= 'failed' and state ~= 'succeeded' then
  if same then return 'duplicate ' .. state end
  return 'conflict ' .. state
end
if state == 'succeeded' and same and ARGV[7] ~= '1' then return 'duplicate succeeded' end
redis.call('DEL', key)
redis.call('HSET', key, 'request', ARGV[3], 'state', 'queued', 'run', ARGV[4],
  'attempts', 0, 'in_doubt', 0, 'reconciled', 0, 'lease_until', 0, 'holder', '',
  'created_at', ARGV[1], 'updated_at', ARGV[1],
  'look_after', redis.call('GET', KEYS[6]) or 0)
redis.call('ZREM', KEYS[3], ARGV[5])
redis.call('PERSIST', history)
redis.call('LPUSH', KEYS[5], ARGV[6])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[5] .. ':' .. ARGV[4])
if state then return 'redriven queued' end
return 'queued queued'
