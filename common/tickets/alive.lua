-- Whether a ticket's holder may still be working. A holder names its worker process
-- ('<node>.<id>'); that process beats a key '<prefix>:alive:<node>' holding until when it is
-- alive (epoch s, on the workers' clocks, like every lease). A holder that names no process
-- (tests, older holders) may be working: its lease decides.
-- KEYS[1]: the ticket's key ('<prefix>:ticket:<id>'). ARGV: the holder, now (epoch s).
local node = string.match(ARGV[1] or '', '^([^.]+)%.')
if not node then return true end
local prefix = string.match(KEYS[1], '^(.*):ticket:')
local until_ = redis.call('GET', prefix .. ':alive:' .. node)
return until_ ~= false and tonumber(until_) > tonumber(ARGV[2])
