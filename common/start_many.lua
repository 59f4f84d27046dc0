-- start.lua for each ticket of a batch, in one call: the same steps, ticket after ticket, so
-- each ticket keeps its own claim, token, breaker check and in-doubt mark. start is start.lua
-- (with its functions), composed in at load time (common/scripts.py).
-- KEYS[1..3]: delayed set, failed index, breaker; then per ticket: ticket, history, bucket.
-- ARGV[1]: the longest wait for a reserved token that is slept; ARGV[2..12]: bucket's;
-- ARGV[13..18]: breaker's (the gate's, the same for every ticket); then per ticket a record:
-- its length n, then start.lua's ARGV[9] (the gate), ARGV[1..8] (begin's, the fingerprint)
-- and ARGV[28..] (update's), n values in all.
-- Returns start.lua's answer for each ticket, in order.
local answers = {}
local at, t = 19, 0
while at <= #ARGV do
  local n = tonumber(ARGV[at])
  local argv = {unpack(ARGV, at + 2, at + 9)}
  argv[9], argv[10] = ARGV[at + 1], ARGV[1]
  for i = 2, 18 do argv[9 + i] = ARGV[i] end
  for i = at + 10, at + n do argv[#argv + 1] = ARGV[i] end
  local k = 4 + 3 * t
  answers[#answers + 1] = start({KEYS[k], KEYS[1], KEYS[2], KEYS[k + 1], KEYS[k + 2], KEYS[3]},
    argv)
  at, t = at + n + 1, t + 1
end
return answers
