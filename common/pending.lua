-- KEYS: ticket. ARGV: run. The request of an unfinished ticket of this run, else nil.
local h = redis.call('HMGET', KEYS[1], 'state', 'run', 'request')
if h[2] == ARGV[1] and (h[1] == 'retrying' or h[1] == 'running' or h[1] == 'queued') then
  return {h[1], h[3]}
end
return false
