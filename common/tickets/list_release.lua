-- Give up the lister's claim of a shared list call that kept nothing (the gate said wait, the
-- call failed), if it is still this lister's. KEYS: the lister claim. ARGV: token.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
