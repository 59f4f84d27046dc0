-- Drop the cached token KEYS[1] only if it is still ARGV[1] (another worker may have renewed
-- it since). The number of keys deleted.
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
