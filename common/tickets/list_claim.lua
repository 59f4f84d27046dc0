-- Become an instance's lister for a shared list call of operations, unless another worker is
-- one now: a short claim (SET NX PX), and the call's number taken from the instance's counter
-- before the call is sent (a snapshot's number above the one a ticket noted proves its call
-- started after that ticket's moment).
-- KEYS: the lister claim, the instance's counter. ARGV: token, hold (ms).
-- Returns the call's number, or nil while another worker holds the claim.
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
return redis.call('INCR', KEYS[2])
