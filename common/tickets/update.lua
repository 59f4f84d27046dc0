-- KEYS: ticket, failed index, history, delayed set.
-- ARGV: run, holder ('' for any), attempts delta, ttl (0: keep), now, mark failed ('1'/'0'),
--       due (for the delayed set, '' for none), history note ('' for none), ticket id,
--       then field/value pairs.
-- Refuses stale runs, lost holds and finished tickets: a late writer never undoes a result.
local h = redis.call('HMGET', KEYS[1], 'state', 'run', 'holder')
if not h[1] or h[2] ~= ARGV[1] or h[1] == 'succeeded' or h[1] == 'failed' then return false end
if ARGV[2] ~= '' and h[3] ~= ARGV[2] then return false end
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', tonumber(ARGV[3]))
local fields = {}
for i = 10, #ARGV do fields[#fields + 1] = ARGV[i] end
if #fields > 0 then redis.call('HSET', KEYS[1], unpack(fields)) end
if ARGV[8] ~= '' then
  redis.call('RPUSH', KEYS[3], ARGV[8])
  redis.call('LTRIM', KEYS[3], -HISTORY_LIMIT, -1)
end
if tonumber(ARGV[4]) > 0 then
  redis.call('ZREM', KEYS[4], ARGV[9] .. ':' .. ARGV[1])
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[4]))
end
if ARGV[6] == '1' then redis.call('ZADD', KEYS[2], ARGV[5], ARGV[9]) end
if ARGV[7] ~= '' then redis.call('ZADD', KEYS[4], ARGV[7], ARGV[9] .. ':' .. ARGV[1]) end
return attempts
