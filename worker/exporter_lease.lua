-- Take or extend the metrics exporter lease: KEYS[1] the lease key, ARGV[1] this process's
-- identity, ARGV[2] the lease's seconds. 1 when this process holds it now, else 0.
local holder = redis.call('GET', KEYS[1])
if not holder or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 1
end
return 0
