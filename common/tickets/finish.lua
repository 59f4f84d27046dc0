-- The end of a delivery whose create call made the task, in one step: tell the breaker
-- (breaker, op 'ok': a closed breaker without failures writes nothing), start following the
-- task (as FollowStore.enroll does; whatever becomes of the write after it), then record the
-- success (update). breaker and update are the scripts of those names, composed in as
-- functions at load time (common/scripts.py).
-- KEYS: ticket, failed index, history, delayed set (update's); the breaker; the instance's
-- followed tasks, the follow rounds (a key a call does not use is the ticket's, untouched).
-- ARGV[1]: 'record' to tell the breaker, else ''; ARGV[2..7]: breaker's; ARGV[8]: 'follow' to
-- follow, else ''; ARGV[9..12]: the entry, the first round's time, the instance, the ticket's
-- sync field; ARGV[13]: the ticket id; ARGV[14..]: update's.
-- Returns update's answer (false: the write was refused).
if ARGV[1] == 'record' then breaker({KEYS[5]}, {unpack(ARGV, 2, 7)}) end
if ARGV[8] == 'follow' then
  redis.call('HSET', KEYS[6], ARGV[13], ARGV[9])
  redis.call('ZADD', KEYS[7], 'LT', ARGV[10], ARGV[11])
  redis.call('HSET', KEYS[1], 'sync', ARGV[12])
end
return update({KEYS[1], KEYS[2], KEYS[3], KEYS[4]}, {unpack(ARGV, 14)})
