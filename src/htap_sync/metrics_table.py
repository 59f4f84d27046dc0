"""The README's metrics table, rendered from the metrics the code defines.

``python -m htap_sync.metrics_table`` prints it (Markdown), for the README to quote verbatim.
"""

from __future__ import annotations

from htap_sync.producer.request_ids import METRICS as INGRESS_METRICS
from htap_sync.worker.metrics import FLEET, worker_metrics

__all__ = ["catalogue", "render_metrics_table"]

# (name, kind, help, labels, exported by)
Row = tuple[str, str, str, tuple[str, ...], str]


def _ingress_metrics() -> list[tuple[str, str, str, tuple[str, ...]]]:
    found = []
    for metric in INGRESS_METRICS:
        (family,) = metric.describe()
        # prometheus_client has no public accessor for a metric's label names.
        found.append((family.name, family.type, family.documentation, metric._labelnames))
    return found


def catalogue() -> list[Row]:
    """Every metric the product exports, with where it comes from."""
    fleet = {name for name, *_ in FLEET}
    rows: list[Row] = []
    for name, kind, doc, labels in worker_metrics():
        where = "one worker (lease)" if name in fleet else "each worker"
        rows.append((name, kind, doc, labels, where))
    rows.extend((n, k, d, lab, "ingress") for n, k, d, lab in _ingress_metrics())
    return rows


def _exposed(name: str, kind: str) -> str:
    """The name as scraped: counters end in ``_total``; histograms add their series."""
    if kind == "counter":
        return f"`{name.removesuffix('_total')}_total`"
    if kind == "histogram":
        return f"`{name}` (`_bucket`, `_sum`, `_count`)"
    return f"`{name}`"


def render_metrics_table() -> str:
    """The Markdown table of every metric: name, type, labels, who exports it, meaning."""
    lines = [
        "| Metric | Type | Labels | Exported by | Meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, kind, doc, labels, where in catalogue():
        label_text = ", ".join(f"`{label}`" for label in labels) or "-"
        meaning = doc.replace("|", "\\|")
        lines.append(f"| {_exposed(name, kind)} | {kind} | {label_text} | {where} | {meaning} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_metrics_table(), end="")
