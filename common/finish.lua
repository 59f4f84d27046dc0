-- The end of a delivery whose create call made the task, in one step: tell the breaker
-- (breaker, with op 'ok': a closed breaker writes nothing), then record the success (update).
-- breaker and update are the scripts of the same names, composed in as functions at load time.
-- KEYS: ticket, failed index, history, delayed set; then, with a breaker: the breaker.
-- ARGV[1]: 'record' to tell the breaker, '' not to; ARGV[2..7]: breaker's ('' without);
-- ARGV[8..]: update's. Returns update's answer (false: the write was refused).
if ARGV[1] == 'record' then breaker({KEYS[5]}, {unpack(ARGV, 2, 7)}) end
return update({KEYS[1], KEYS[2], KEYS[3], KEYS[4]}, {unpack(ARGV, 8)})
