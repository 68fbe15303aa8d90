"""Who gets a connection: per-source and total limits, the oldest stranger shed first, paired shares kept."""

from __future__ import annotations

import pytest

from coalesce_common.signaling.admission import (
    HEADROOM,
    MAX_CLOSING,
    Admission,
    Admitted,
    ConnectionLimits,
    Refusal,
    Ticket,
    total_for_descriptors,
)


def admitted(verdict: Admitted | Refusal) -> Admitted:
    assert isinstance(verdict, Admitted), verdict
    return verdict


def test_one_source_gets_its_allowance_and_no_more() -> None:
    admission = Admission(ConnectionLimits(per_source=3, total=10))
    tickets = [admitted(admission.admit("10.0.0.9")).ticket for _ in range(3)]
    assert admission.admit("10.0.0.9") is Refusal.PER_SOURCE
    assert admitted(admission.admit("10.0.0.1")).shed is None  # another source is not held back
    admission.release(tickets[0])
    admitted(admission.admit("10.0.0.9"))


def test_at_the_total_the_oldest_unpaired_connection_makes_room() -> None:
    admission = Admission(ConnectionLimits(per_source=5, total=3))
    share = admitted(admission.admit("10.0.0.1")).ticket
    admission.mark_paired(share)
    idle = [admitted(admission.admit(f"10.0.0.{n}")).ticket for n in (2, 3)]
    newcomer = admitted(admission.admit("10.0.0.4"))
    assert newcomer.shed is idle[0]
    assert idle[0].closing
    admission.release(idle[0])  # its transport closed
    assert admitted(admission.admit("10.0.0.5")).shed is idle[1]
    assert not share.closing


def test_a_paired_share_is_never_shed() -> None:
    admission = Admission(ConnectionLimits(per_source=5, total=2))
    for source in ("10.0.0.1", "10.0.0.2"):
        admission.mark_paired(admitted(admission.admit(source)).ticket)
    assert admission.admit("10.0.0.3") is Refusal.FULL


def test_a_burst_at_the_limit_is_refused_while_the_shed_ones_close() -> None:
    admission = Admission(ConnectionLimits(per_source=100, total=20))
    for n in range(20):
        admitted(admission.admit(f"10.0.1.{n}"))
    burst = [admission.admit(f"10.0.2.{n}") for n in range(MAX_CLOSING + 5)]
    shed = [v.shed for v in burst if isinstance(v, Admitted)]
    assert len(shed) == MAX_CLOSING
    assert burst[MAX_CLOSING:] == [Refusal.FULL] * 5
    assert admission.open == 20 + MAX_CLOSING  # the shed ones hold their descriptors until released
    for ticket in shed:
        assert isinstance(ticket, Ticket)
        admission.release(ticket)
    admitted(admission.admit("10.0.3.1"))


def test_while_the_shed_ones_close_it_is_making_room() -> None:
    admission = Admission(ConnectionLimits(per_source=100, total=20))
    for n in range(20):
        admitted(admission.admit(f"10.0.1.{n}"))
    assert not admission.making_room()  # full, but a newcomer would shed an idle one at once
    shed = [admitted(admission.admit(f"10.0.2.{n}")).shed for n in range(MAX_CLOSING)]
    assert admission.making_room()  # a newcomer now would be refused only until those have closed
    for ticket in shed:
        assert isinstance(ticket, Ticket)
        admission.release(ticket)
    assert not admission.making_room()


def test_when_every_connection_is_paired_nothing_is_making_room() -> None:
    admission = Admission(ConnectionLimits(per_source=8, total=2))
    for ticket in (admitted(admission.admit(f"10.0.4.{n}")).ticket for n in range(2)):
        admission.mark_paired(ticket)
    assert admission.admit("10.0.4.9") is Refusal.FULL
    assert not admission.making_room()  # nobody is closing: waiting would not help


def test_out_of_descriptors_lowers_the_limit_once_per_shortage() -> None:
    admission = Admission(ConnectionLimits(per_source=100, total=64))
    tickets = [admitted(admission.admit(f"10.0.0.{n}")).ticket for n in range(40)]
    admission.mark_paired(tickets[0])
    shed = admission.out_of_descriptors()
    assert admission.total == 40 - HEADROOM
    assert shed == tickets[1 : HEADROOM + 1]  # oldest first, the paired share kept
    assert admission.out_of_descriptors() == []  # the shed ones are still closing: no second cut
    assert admission.total == 40 - HEADROOM
    for ticket in shed:
        admission.release(ticket)
    assert admission.open == 40 - HEADROOM
    admission.out_of_descriptors()  # still short with fewer connections: something else holds them
    assert admission.total == 40 - 2 * HEADROOM


def test_release_is_idempotent() -> None:
    admission = Admission(ConnectionLimits(per_source=1, total=1))
    ticket = admitted(admission.admit("10.0.0.1")).ticket
    admission.release(ticket)
    admission.release(ticket)
    assert (admission.open, admission.count("10.0.0.1")) == (0, 0)
    admitted(admission.admit("10.0.0.1"))


@pytest.mark.parametrize(("open_files", "total"), [(20000, 64), (1024, 64), (100, 36), (10, 1)])
def test_the_default_total_leaves_descriptors_for_the_rest(open_files: int, total: int) -> None:
    assert total_for_descriptors(open_files) == total


def test_limits_must_allow_one_connection() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ConnectionLimits(per_source=0)


def test_the_source_holding_the_most_is_shed_first() -> None:
    admission = Admission(ConnectionLimits(per_source=8, total=4))
    lone = admitted(admission.admit("10.0.0.1")).ticket  # the oldest, but alone: a sender about to pair
    flood = [admitted(admission.admit("10.0.0.66")).ticket for _ in range(3)]
    assert admitted(admission.admit("10.0.0.77")).shed is flood[0]
    assert not lone.closing
