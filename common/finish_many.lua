-- finish.lua for each ticket of a batch whose create call made its task, in one call: the
-- same steps, ticket after ticket. finish is finish.lua (with its functions), composed in at
-- load time (common/scripts.py).
-- KEYS[1..3]: failed index, delayed set, breaker; then per ticket: ticket, history, the
-- instance's followed tasks, the follow rounds (the ticket's key where it does not follow).
-- ARGV[1]: 'record' to tell the breaker, else ''; ARGV[2..7]: breaker's (the gate's, the same
-- for every ticket); then per ticket a record: its length n, then finish.lua's ARGV[8..]
-- (the follow flag and entry, the ticket id, update's), n values in all.
-- Returns finish.lua's answer for each ticket, in order (false: refused).
local answers = {}
local at, t = 8, 0
while at <= #ARGV do
  local n = tonumber(ARGV[at])
  local argv = {unpack(ARGV, 1, 7)}
  for i = at + 1, at + n do argv[#argv + 1] = ARGV[i] end
  local k = 4 + 4 * t
  local done = finish({KEYS[k], KEYS[1], KEYS[k + 1], KEYS[2], KEYS[3], KEYS[k + 2],
    KEYS[k + 3]}, argv)
  answers[#answers + 1] = done and 1 or 0
  at, t = at + n + 1, t + 1
end
return answers
