"""Ticket ids come from the request's identity: project, instance and task name."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from htap_sync.common.tickets.ids import is_ticket_id, ticket_id

P, INST = "0123456789abcdef0123456789abcdef", "0f1e2d3c4b5a69788796a5b4c3d2e1f0in17"


def test_same_identity_same_ticket() -> None:
    """The same project, instance and name always give the same ticket, of a fixed shape."""
    assert ticket_id(P, INST, "orders") == ticket_id(P, INST, "orders")
    assert is_ticket_id(ticket_id(P, INST, "orders"))
    assert not is_ticket_id("orders")


def test_any_part_changes_the_ticket() -> None:
    """Another project, instance or (case-sensitive) name is another ticket."""
    base = ticket_id(P, INST, "orders")
    assert ticket_id("f" * 32, INST, "orders") != base
    assert ticket_id(P, "e" * 36, "orders") != base
    assert ticket_id(P, INST, "Orders") != base


@given(
    st.lists(
        st.text(alphabet="abcdefghij_0123", min_size=3, max_size=12),
        min_size=2,
        max_size=50,
        unique=True,
    )
)
def test_distinct_names_distinct_tickets(names: list[str]) -> None:
    """Distinct task names on one instance never share a ticket."""
    assert len({ticket_id(P, INST, n) for n in names}) == len(names)
