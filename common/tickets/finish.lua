-- The end of a delivery whose create call made the task, in one step: tell the breaker
-- (breaker, op 'ok': a closed breaker without failures writes nothing), start following the
-- task (as FollowStore.enroll does; whatever becomes of the write after it), then record the
-- success (update). breaker and update are the scripts of those names, composed in as
-- functions at load time (common/scripts.py).
-- KEYS: ticket, failed index, history, delayed set (update's); the breaker; the instance's
-- followed tasks, the follow rounds (a key a call does not use is the ticket's, untouched).
-- ARGV (layout: common/tickets/layouts.py): 'record' to tell the breaker, else ''; breaker's;
-- 'follow' to follow, else ''; the entry, the first round's time, the instance, the ticket's
-- sync field; the ticket id; update's.
-- Returns update's answer (false: the write was refused).
if ARGV[1] == 'record' then
  breaker({KEYS[5]}, {unpack(ARGV, FINISH_BREAKER_FIRST, FINISH_FOLLOW - 1)})
end
local f = FINISH_FOLLOW
if ARGV[f] == 'follow' then
  redis.call('HSET', KEYS[6], ARGV[FINISH_TICKET], ARGV[f + 1])
  redis.call('ZADD', KEYS[7], 'LT', ARGV[f + 2], ARGV[f + 3])
  redis.call('HSET', KEYS[1], 'sync', ARGV[f + 4])
end
return update({KEYS[1], KEYS[2], KEYS[3], KEYS[4]}, {unpack(ARGV, FINISH_TICKET + 1)})
