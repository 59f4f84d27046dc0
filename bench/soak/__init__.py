"""``make soak``: the installed product run as operators run it, under real faults, for a few
minutes; one table of the guarantees that held and the time each fault cost (see README,
Operations). Not part of ``make test``."""
