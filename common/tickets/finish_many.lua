-- finish.lua for each ticket of a batch whose create call made its task, in one call: the
-- same steps, ticket after ticket. finish is finish.lua (with its functions), composed in at
-- load time (common/scripts.py). What every ticket's finish shares is sent once: the
-- breaker's arguments, and update's (the success) as a template in which each ticket's run,
-- holder, note, id and job id take their places.
-- KEYS[1..3]: failed index, delayed set, breaker; then per ticket: ticket, history, the
-- instance's followed tasks, the follow rounds (the ticket's key where it does not follow).
-- ARGV (layout: common/tickets/layouts.py): 'record' to tell the breaker, else ''; breaker's;
-- where the job id's value sits in update's ARGV; nu, then update's ARGV (nu values: run,
-- holder, note and id are the ticket's); then per ticket: run, holder, id, note, job id, and
-- finish.lua's five follow values (the follow flag, entry, first round, instance, sync field).
-- Returns, for each ticket in order, 1 when its success was written, else 0 (refused).
local job_at, nu = tonumber(ARGV[MANY_FINISH_JOB_AT]), tonumber(ARGV[MANY_FINISH_NU])
local answers = {}
local at, t = MANY_FINISH_NU + 1 + nu, 0
while at <= #ARGV do
  local argv = {unpack(ARGV, 1, FINISH_FOLLOW - 1)}
  for i = 0, 4 do argv[FINISH_FOLLOW + i] = ARGV[at + 5 + i] end
  local u = FINISH_TICKET
  argv[u] = ARGV[at + 2]
  for i = 1, nu do argv[u + i] = ARGV[MANY_FINISH_NU + i] end
  argv[u + UPDATE_RUN], argv[u + UPDATE_HOLDER] = ARGV[at], ARGV[at + 1]
  argv[u + UPDATE_NOTE], argv[u + UPDATE_ID] = ARGV[at + 3], ARGV[at + 2]
  argv[u + job_at] = ARGV[at + 4]
  local k = 4 + 4 * t
  local done = finish({KEYS[k], KEYS[1], KEYS[k + 1], KEYS[2], KEYS[3], KEYS[k + 2],
    KEYS[k + 3]}, argv)
  answers[#answers + 1] = done and 1 or 0
  at, t = at + 10, t + 1
end
return answers
