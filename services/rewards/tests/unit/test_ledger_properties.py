"""Property tests of the ledger rules over random sequences of earn / spend / refund / expire / cancel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from rewards.domain.ids import transfer_id
from rewards.domain.ledger import (
    Account,
    Allocation,
    Book,
    InsufficientPoints,
    Outcome,
    Wallet,
    earn,
    expire,
    restore,
    reverse,
    spend,
)

START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Step:
    op: str
    points: int
    days: int  # how far time has moved (expiry lengths for earns)


steps = st.lists(
    st.builds(
        Step,
        op=st.sampled_from(["earn", "spend", "refund", "expire", "cancel"]),
        points=st.integers(min_value=1, max_value=500),
        days=st.integers(min_value=0, max_value=60),
    ),
    max_size=40,
)


@dataclass
class Run:
    wallet: Wallet
    book: Book
    spends: dict[UUID, tuple[Allocation, ...]]
    earned_lots: list[UUID]
    cancelled: set[UUID]
    rejected: set[int]


def run(sequence: list[Step], state: Run | None = None) -> Run:
    """Apply the steps; the transfer ids derive from the step's position, as they derive from the cause.

    As in the database, an outcome is adopted only if its transfer id is new to the book. A step that moved
    nothing (a refused spend, an expiry run with nothing due) is no part of the history, so a replay does
    not send it again."""
    state = state or Run(Wallet(), Book(), {}, [], set(), set())
    now = START
    for index, step in enumerate(sequence):
        now += timedelta(days=step.days % 5)
        tid = transfer_id("m1", index, step.op)
        outcome: Outcome | None = None
        if index in state.rejected:
            continue
        if step.op == "earn":
            outcome = earn(state.wallet, tid, step.points, now + timedelta(days=step.days))
        elif step.op == "spend":
            try:
                outcome = spend(state.wallet, tid, step.points, now)
            except InsufficientPoints:
                outcome = None
        elif step.op == "refund":
            lots = state.earned_lots
            outcome = reverse(
                state.wallet, tid, step.points, prefer_lot=lots[index % len(lots)] if lots else None
            )
        elif step.op == "expire":
            outcome = expire(state.wallet, tid, now)
        elif step.op == "cancel":
            # a cancel names one redemption: the latest spend before it in the sequence
            earlier = [transfer_id("m1", j, "spend") for j in range(index)]
            candidates = [s for s in earlier if s in state.spends]
            spent = candidates[-1] if candidates else None
            if spent is not None and spent not in state.cancelled:
                outcome = restore(state.wallet, transfer_id("m1", spent, "cancel"), state.spends[spent])
                state.cancelled.add(spent)
        if outcome is None:
            state.rejected.add(index)
        elif state.book.apply(outcome.transfer):
            state.wallet = outcome.wallet
            if step.op == "earn":
                state.earned_lots.append(tid)
            if step.op == "spend":
                state.spends[tid] = outcome.allocations
            assert sum(p.amount for p in outcome.transfer.postings) == 0
            assert state.wallet.balance >= 0
            assert state.wallet.debt >= 0
            assert all(lot.remaining >= 0 for lot in state.wallet.lots)
            assert state.book.balance(Account.CUSTOMER) == state.wallet.balance
            assert -state.book.balance(Account.DEBT) == state.wallet.debt
    return state


@settings(max_examples=300, deadline=None)
@given(steps)
def test_every_transfer_balances_and_no_balance_goes_below_zero(sequence: list[Step]) -> None:
    state = run(sequence)
    assert sum(state.book.balances.values()) == 0
    assert state.wallet.balance == sum(lot.remaining for lot in state.wallet.lots)
    assert state.book.balance(Account.CUSTOMER) >= 0
    assert state.book.balance(Account.DEBT) <= 0


@settings(max_examples=200, deadline=None)
@given(steps)
def test_replaying_the_whole_sequence_changes_nothing(sequence: list[Step]) -> None:
    state = run(sequence)
    balances, applied, lots = dict(state.book.balances), set(state.book.applied), state.wallet.lots
    run(sequence, state)
    assert state.book.balances == balances
    assert state.book.applied == applied
    assert state.wallet.lots == lots


@settings(max_examples=200, deadline=None)
@given(steps)
def test_debt_is_only_owed_while_nothing_is_left_to_spend(sequence: list[Step]) -> None:
    state = run(sequence)
    assert state.wallet.debt == 0 or state.wallet.balance == 0
