-- finish.lua for each ticket of a batch whose create call made its task, in one call: the
-- same steps, ticket after ticket. finish is finish.lua (with its functions), composed in at
-- load time (common/scripts.py). What every ticket's finish shares is sent once: the
-- breaker's arguments, and update's (the success) as a template in which each ticket's run,
-- holder, note, id and job id take their places.
-- KEYS[1..3]: failed index, delayed set, breaker; then per ticket: ticket, history, the
-- instance's followed tasks, the follow rounds (the ticket's key where it does not follow).
-- ARGV[1]: 'record' to tell the breaker, else ''; ARGV[2..7]: breaker's; ARGV[8]: where the
-- job id's value sits in update's ARGV; ARGV[9]: nu, then update's ARGV (nu values: run,
-- holder, note and id at 1, 2, 8, 9 are the ticket's); then per ticket: run, holder, id,
-- note, job id, and finish.lua's ARGV[8..12] (the follow flag, entry, first round, instance,
-- sync field).
-- Returns, for each ticket in order, 1 when its success was written, else 0 (refused).
local job_at, nu = tonumber(ARGV[8]), tonumber(ARGV[9])
local answers = {}
local at, t = 10 + nu, 0
while at <= #ARGV do
  local argv = {unpack(ARGV, 1, 7)}
  for i = 0, 4 do argv[8 + i] = ARGV[at + 5 + i] end
  argv[13] = ARGV[at + 2]
  for i = 1, nu do argv[13 + i] = ARGV[9 + i] end
  argv[14], argv[15], argv[21], argv[22] = ARGV[at], ARGV[at + 1], ARGV[at + 3], ARGV[at + 2]
  argv[13 + job_at] = ARGV[at + 4]
  local k = 4 + 4 * t
  local done = finish({KEYS[k], KEYS[1], KEYS[k + 1], KEYS[2], KEYS[3], KEYS[k + 2],
    KEYS[k + 3]}, argv)
  answers[#answers + 1] = done and 1 or 0
  at, t = at + 10, t + 1
end
return answers
