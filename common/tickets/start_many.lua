-- start.lua for each ticket of a batch, in one call: the same steps, ticket after ticket, so
-- each ticket keeps its own claim, token, breaker check and in-doubt mark. start is start.lua
-- (with its functions), composed in at load time (common/scripts.py). What every ticket's
-- start shares is sent once: the gate's arguments, and begin's and update's (the mark) as
-- templates, in which each ticket's run, holder and id take their places.
-- KEYS[1..3]: delayed set, failed index, breaker; then per ticket: ticket, history, bucket.
-- ARGV[1]: the longest wait for a reserved token that is slept; ARGV[2..12]: bucket's;
-- ARGV[13..18]: breaker's; ARGV[19]: nb, then begin's ARGV (nb values: run, holder and id
-- at 1, 5, 7 are the ticket's); then nm, then update's ARGV for the mark (nm values: run,
-- holder and id at 1, 2, 9 are the ticket's); then per ticket: the gate ('check', 'go' or
-- 'claim'), run, holder, id, fingerprint.
-- Returns start.lua's answer for each ticket, in order.
local nb = tonumber(ARGV[19])
local nm = tonumber(ARGV[20 + nb])
local answers = {}
local at, t = 21 + nb + nm, 0
while at <= #ARGV do
  local run, holder, ticket = ARGV[at + 1], ARGV[at + 2], ARGV[at + 3]
  local argv = {unpack(ARGV, 20, 19 + nb)}
  argv[1], argv[5], argv[7] = run, holder, ticket
  argv[8], argv[9], argv[10] = ARGV[at + 4], ARGV[at], ARGV[1]
  for i = 2, 18 do argv[9 + i] = ARGV[i] end
  for i = 1, nm do argv[27 + i] = ARGV[20 + nb + i] end
  argv[28], argv[29], argv[36] = run, holder, ticket
  local k = 4 + 3 * t
  answers[#answers + 1] = start({KEYS[k], KEYS[1], KEYS[2], KEYS[k + 1], KEYS[k + 2], KEYS[3]},
    argv)
  at, t = at + 5, t + 1
end
return answers
