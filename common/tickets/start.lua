-- The start of a delivery in one step: claim the ticket (begin), and unless it is in doubt or
-- its request differs, take a token (bucket), ask the breaker (breaker), then count the
-- attempt and mark the ticket in doubt (update): the create call may go out. A wait of the
-- gate marks nothing and costs no attempt. begin, bucket, breaker and update are the scripts
-- of the same names, composed in as functions at load time (common/scripts.py).
-- KEYS: ticket, delayed set, failed index, history; then, with the gate: bucket, breaker.
-- ARGV (its layout in common/tickets/layouts.py, whose constants replace the upper-case
-- names at load): begin's; the message's request (fingerprint); the gate, 'check' (bucket
-- and breaker), 'go' (nothing to check) or 'claim' (claim only); the longest wait for a
-- reserved token that is slept (a longer one is a wait); bucket's; breaker's; update's (the
-- mark).
-- Returns begin's answer ({why} when refused); a claim is followed by the verdict, 'marked'
-- (then the time to sleep first), 'rate' or 'breaker' (then the wait), or 'claimed'.
local claimed = begin({KEYS[1], KEYS[2]}, {unpack(ARGV, 1, BEGIN_ARGC)})
if claimed[1] ~= 'ok' then return claimed end
local function answer(verdict, wait)
  claimed[7], claimed[8] = verdict, wait
  return claimed
end
if ARGV[START_GATE] == 'claim' or claimed[2] == '1' or claimed[4] ~= ARGV[START_FINGERPRINT] then
  return answer('claimed', '0')
end
local sleep = '0'
if ARGV[START_GATE] == 'check' then
  local grant = bucket({KEYS[5]}, {unpack(ARGV, START_BUCKET_FIRST, START_BREAKER_FIRST - 1)})
  if grant[1] == 0 or tonumber(grant[2]) > tonumber(ARGV[START_MAX_SLEEP]) then
    return answer('rate', grant[2])
  end
  local wait = breaker({KEYS[6]}, {unpack(ARGV, START_BREAKER_FIRST, START_UPDATE_FIRST - 1)})
  if tonumber(wait) > 0 then return answer('breaker', wait) end
  sleep = grant[2]
end
update({KEYS[1], KEYS[3], KEYS[4], KEYS[2]}, {unpack(ARGV, START_UPDATE_FIRST)})
return answer('marked', sleep)
