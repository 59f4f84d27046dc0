"""The soak's one table, in markdown: a row per scenario, then what each row's cells mean."""

from __future__ import annotations

from collections.abc import Sequence

from bench.soak.measure import Drain, Row

COLUMNS = (
    "scenario",
    "path",
    "rows",
    "lost",
    "created twice",
    "false failures",
    "left following",
    "fail reasons kept",
    "drain after fault (s)",
    "bound (s)",
    "peak calls/s create / list / jobs",
    "rate + burst",
)
APIS = ("create", "list", "jobs")

LEGEND = [
    "* **lost**: tickets neither succeeded nor failed when the scenario ended (unknown ones"
    " included; one still on its way when the scenario gave up counts too, and the notes give"
    " their states and attempts); **created twice**: tasks the simulator created more than"
    " once; **false failures**: failed tickets whose task exists. These three are hard"
    " guarantees: any of them above 0 makes `make soak` exit 1.",
    "* **left following**: succeeded tickets whose sync state was still `following` (or not"
    " set) past their follow deadline (seen succeeded that long before the scenario ended;"
    " younger ones are in the notes); **fail reasons kept**: tasks whose"
    " create job failed and whose ticket has its job id, and how many of those tickets carry"
    " the job's `fail_reason` (a reconciled ticket has no job id: the API offers no way back"
    " to its job; the notes count those).",
    "* **drain after fault**: seconds from the fault's end until every ticket was done;"
    " `>N` means not all were done when the scenario gave up, N s after the fault."
    " **bound**: the issue's (tickets left when the fault ended) / rate + 45 s"
    " (+ 30 s after a Redis restart); where an earlier fault's bound still runs when a fault"
    " ends, it follows as 'the earlier fault's, still running' (from this fault's end): that"
    " fault's leftovers, such as a killed holder's lease to wait out, are its cost, and a"
    " drain within it is not OVER. OVER marks a drain past its bound. The same bound at"
    " the rate the fleet's bucket allowed while draining (its effective rate, which each 429"
    " halves, 0 while a Retry-After blocks it: sampled at every look) follows in brackets; a"
    " drain past the first bound but within the second says so: the gateway's 429s, not a"
    " fault's leftovers, set its pace.",
    "* **peak calls/s**: the most calls the simulator saw in any one-second window, per API,"
    " against the fleet's configured rate + burst.",
]


def _drain(drain: Drain) -> str:
    if drain.seconds is None:
        return f"{drain.fault} >{drain.waited_s:.0f} (OVER)"
    verdict = ""
    if not drain.met:
        verdict = " (over; within at the allowed rate)" if drain.met_at_allowed else " (OVER)"
    return f"{drain.fault} {drain.seconds:.1f}{verdict}"


def _bound(drain: Drain) -> str:
    text = f"{drain.fault} {drain.bound_s:.1f}"
    if drain.allowed_bound_s is not None and drain.allowed_per_s is not None:
        text += f" (at the allowed {drain.allowed_per_s:.1f}/s: {drain.allowed_bound_s:.1f})"
    if drain.carried_s is not None:
        text += f" (the earlier fault's, still running: {drain.carried_s:.1f})"
    return text


def cells(row: Row) -> list[str]:
    """The row's cells, in :data:`COLUMNS` order."""
    drains = "; ".join(_drain(d) for d in row.drains) or "-"
    bounds = "; ".join(_bound(d) for d in row.drains) or "-"
    kept, of = row.reasons_kept
    peak = " / ".join(str(row.peaks.get(api, 0)) for api in APIS)
    over = " (OVER)" if any(row.peaks.get(api, 0) > row.limit for api in APIS) else ""
    return [
        row.scenario,
        row.path,
        str(row.rows),
        str(row.lost),
        str(row.created_twice),
        str(row.false_failures),
        str(row.left_following),
        f"{kept} / {of}",
        drains,
        bounds,
        peak + over,
        str(row.limit),
    ]


def markdown(rows: Sequence[Row], *, header: Sequence[str]) -> str:
    """The whole report: ``header`` lines, the table, the legend, then each row's notes."""
    lines = [*header, ""]
    lines.append("| " + " | ".join(COLUMNS) + " |")
    lines.append("|" + "---|" * len(COLUMNS))
    lines += ["| " + " | ".join(cells(row)) + " |" for row in rows]
    lines += ["", *LEGEND]
    notes = [f"* {row.scenario}: {note}" for row in rows for note in row.notes]
    if notes:
        lines += ["", "Notes:", "", *notes]
    broken = [b for row in rows for b in row.broken()]
    lines += ["", f"Hard guarantees broken: {', '.join(broken) if broken else 'none'}."]
    return "\n".join(lines) + "\n"
