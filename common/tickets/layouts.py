"""Where each argument sits in the ARGV of the scripts composed of others, declared once.

``start.lua``, ``finish.lua`` and their batch forms run ``begin``, ``bucket``, ``breaker`` and
``update`` as functions, each on its own slice of the caller's ARGV. The slices' bounds are
Lua constants (``START_BUCKET_FIRST`` ...) replaced by these values when the scripts are
loaded (:func:`constants`); the Python that packs the arguments pads with the same counts;
``tests/unit/test_house_rules.py`` checks that each script reads exactly as many arguments as
declared here and that no slice bound is a bare number in the Lua.
"""

from __future__ import annotations

from htap_sync.common.limits import breaker, bucket

# The arguments of the scripts run as functions.
BEGIN_ARGC = 7  # begin.lua: run, now, lease until, now (ISO), holder, watchdog time, ticket id
BEGIN_RUN, BEGIN_HOLDER, BEGIN_ID = 1, 5, 7
UPDATE_HEAD = 9  # update.lua: run, holder, attempts, ttl, now, failed, due, note, id; fields
UPDATE_RUN, UPDATE_HOLDER, UPDATE_NOTE, UPDATE_ID = 1, 2, 8, 9

# start.lua: begin's, the fingerprint, the gate's mode, the longest slept wait, bucket's,
# breaker's, update's (the mark).
START_FINGERPRINT = BEGIN_ARGC + 1
START_GATE = BEGIN_ARGC + 2
START_MAX_SLEEP = BEGIN_ARGC + 3
START_BUCKET_FIRST = START_MAX_SLEEP + 1
START_BREAKER_FIRST = START_BUCKET_FIRST + bucket.ARGC
START_UPDATE_FIRST = START_BREAKER_FIRST + breaker.ARGC
# start_many.lua: the longest slept wait, bucket's, breaker's, then nb and begin's template.
MANY_START_NB = 2 + bucket.ARGC + breaker.ARGC

# finish.lua: the breaker flag, breaker's, the follow flag, its four values, the ticket id,
# update's (the success).
FINISH_BREAKER_FIRST = 2
FINISH_FOLLOW = FINISH_BREAKER_FIRST + breaker.ARGC
FINISH_TICKET = FINISH_FOLLOW + 5
# finish_many.lua: the breaker flag and breaker's, where the job id sits in update's, nu.
MANY_FINISH_JOB_AT = FINISH_FOLLOW
MANY_FINISH_NU = FINISH_FOLLOW + 1


def constants() -> dict[str, str]:
    """The Lua constants of the layouts above, by name (replaced in the scripts' text)."""
    values = {
        "BEGIN_ARGC": BEGIN_ARGC,
        "BEGIN_RUN": BEGIN_RUN,
        "BEGIN_HOLDER": BEGIN_HOLDER,
        "BEGIN_ID": BEGIN_ID,
        "UPDATE_RUN": UPDATE_RUN,
        "UPDATE_HOLDER": UPDATE_HOLDER,
        "UPDATE_NOTE": UPDATE_NOTE,
        "UPDATE_ID": UPDATE_ID,
        "START_FINGERPRINT": START_FINGERPRINT,
        "START_GATE": START_GATE,
        "START_MAX_SLEEP": START_MAX_SLEEP,
        "START_BUCKET_FIRST": START_BUCKET_FIRST,
        "START_BREAKER_FIRST": START_BREAKER_FIRST,
        "START_UPDATE_FIRST": START_UPDATE_FIRST,
        "MANY_START_NB": MANY_START_NB,
        "FINISH_BREAKER_FIRST": FINISH_BREAKER_FIRST,
        "FINISH_FOLLOW": FINISH_FOLLOW,
        "FINISH_TICKET": FINISH_TICKET,
        "MANY_FINISH_JOB_AT": MANY_FINISH_JOB_AT,
        "MANY_FINISH_NU": MANY_FINISH_NU,
        "BUCKET_ARGC": bucket.ARGC,
        "BREAKER_ARGC": breaker.ARGC,
    }
    return {name: str(value) for name, value in values.items()}
