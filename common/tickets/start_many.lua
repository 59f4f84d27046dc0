-- start.lua for each ticket of a batch, in one call: the same steps, ticket after ticket, so
-- each ticket keeps its own claim, token, breaker check and in-doubt mark. start is start.lua
-- (with its functions), composed in at load time (common/scripts.py). What every ticket's
-- start shares is sent once: the gate's arguments, and begin's and update's (the mark) as
-- templates, in which each ticket's run, holder and id take their places.
-- KEYS[1..3]: delayed set, failed index, breaker; then per ticket: ticket, history, bucket.
-- ARGV (layout: common/tickets/layouts.py): the longest wait for a reserved token that is
-- slept; bucket's; breaker's; nb (at MANY_START_NB), then begin's ARGV (nb values: run,
-- holder and id are the ticket's); then nm, then update's ARGV for the mark (nm values: run,
-- holder and id are the ticket's); then per ticket: the gate ('check', 'go' or 'claim'),
-- run, holder, id, fingerprint.
-- Returns start.lua's answer for each ticket, in order.
local nb = tonumber(ARGV[MANY_START_NB])
local nm = tonumber(ARGV[MANY_START_NB + 1 + nb])
local answers = {}
local at, t = MANY_START_NB + 2 + nb + nm, 0
while at <= #ARGV do
  local run, holder, ticket = ARGV[at + 1], ARGV[at + 2], ARGV[at + 3]
  local argv = {unpack(ARGV, MANY_START_NB + 1, MANY_START_NB + nb)}
  argv[BEGIN_RUN], argv[BEGIN_HOLDER], argv[BEGIN_ID] = run, holder, ticket
  argv[START_FINGERPRINT], argv[START_GATE] = ARGV[at + 4], ARGV[at]
  argv[START_MAX_SLEEP] = ARGV[1]
  for i = 1, BUCKET_ARGC + BREAKER_ARGC do argv[START_BUCKET_FIRST - 1 + i] = ARGV[1 + i] end
  local u = START_UPDATE_FIRST - 1
  for i = 1, nm do argv[u + i] = ARGV[MANY_START_NB + 1 + nb + i] end
  argv[u + UPDATE_RUN], argv[u + UPDATE_HOLDER], argv[u + UPDATE_ID] = run, holder, ticket
  local k = 4 + 3 * t
  answers[#answers + 1] = start({KEYS[k], KEYS[1], KEYS[2], KEYS[k + 1], KEYS[k + 2], KEYS[3]},
    argv)
  at, t = at + 5, t + 1
end
return answers
