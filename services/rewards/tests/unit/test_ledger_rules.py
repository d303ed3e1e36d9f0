"""Worked examples of the ledger rules: FIFO by expiry, debt on refund after spend, restore on cancel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4, uuid5

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewards.domain.earning import TierLevel, reversal_points, tier_for
from rewards.domain.ids import LEDGER_NAMESPACE, purchase_transfer_id_bytes, transfer_id
from rewards.domain.ledger import (
    Account,
    InsufficientPoints,
    InvalidAmount,
    Wallet,
    earn,
    expire,
    restore,
    reverse,
    spend,
)

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def test_spending_takes_the_earliest_expiring_lot_first() -> None:
    late, soon = uuid4(), uuid4()
    wallet = earn(Wallet(), late, 100, NOW + timedelta(days=300)).wallet
    wallet = earn(wallet, soon, 100, NOW + timedelta(days=10)).wallet
    outcome = spend(wallet, uuid4(), 150, NOW)
    assert {a.lot_id: a.points for a in outcome.allocations} == {soon: 100, late: 50}
    assert outcome.wallet.balance == 50


def test_expired_lots_cannot_be_spent() -> None:
    wallet = earn(Wallet(), uuid4(), 100, NOW - timedelta(days=1)).wallet
    with pytest.raises(InsufficientPoints):
        spend(wallet, uuid4(), 1, NOW)
    expired = expire(wallet, uuid4(), NOW)
    assert expired is not None
    assert expired.transfer.amount_on(Account.EXPIRED) == 100
    assert expired.wallet.balance == 0
    assert expire(expired.wallet, uuid4(), NOW) is None


def test_refund_after_spending_records_debt_that_the_next_earning_repays() -> None:
    order_lot = uuid4()
    wallet = earn(Wallet(), order_lot, 100, NOW + timedelta(days=365)).wallet
    wallet = spend(wallet, uuid4(), 80, NOW).wallet
    reversed_ = reverse(wallet, uuid4(), 100, prefer_lot=order_lot)
    assert reversed_.debt_added == 80
    assert reversed_.wallet.balance == 0
    assert reversed_.transfer.amount_on(Account.ISSUED) == 100
    repaid = earn(reversed_.wallet, uuid4(), 50, NOW + timedelta(days=365))
    assert repaid.debt_repaid == 50
    assert repaid.wallet.debt == 30
    assert repaid.new_lot is None
    cleared = earn(repaid.wallet, uuid4(), 50, NOW + timedelta(days=365))
    assert cleared.debt_repaid == 30
    assert cleared.wallet.balance == 20
    assert cleared.wallet.debt == 0


def test_cancelling_a_spend_restores_the_same_lots() -> None:
    lot = uuid4()
    wallet = earn(Wallet(), lot, 100, NOW + timedelta(days=30)).wallet
    spent = spend(wallet, uuid4(), 60, NOW)
    restored = restore(spent.wallet, uuid4(), spent.allocations)
    assert restored.wallet.balance == 100
    assert restored.transfer.amount_on(Account.REDEEMED) == -60


def test_amounts_must_be_positive() -> None:
    with pytest.raises(InvalidAmount):
        earn(Wallet(), uuid4(), 0, NOW)
    with pytest.raises(InvalidAmount):
        spend(Wallet(), uuid4(), -5, NOW)


def test_transfer_ids_are_deterministic_per_cause() -> None:
    assert transfer_id("m1", "order", "o-1") == transfer_id("m1", "order", "o-1")
    assert transfer_id("m1", "order", "o-1") != transfer_id("m2", "order", "o-1")


@given(st.text(min_size=1), st.lists(st.one_of(st.text(), st.integers(), st.uuids()), max_size=4))
def test_transfer_ids_are_the_uuid5_of_the_cause(merchant_id: str, cause: list[object]) -> None:
    name = ":".join([merchant_id, *(str(part) for part in cause)])
    assert transfer_id(merchant_id, *cause) == uuid5(LEDGER_NAMESPACE, name)


def test_partial_refunds_adding_up_to_the_line_take_back_all_it_earned() -> None:
    first = reversal_points(earned=101, paid_minor=1000, refunded_total_minor=500, already_reversed=0)
    second = reversal_points(earned=101, paid_minor=1000, refunded_total_minor=1000, already_reversed=first)
    assert (first, first + second) == (50, 101)
    assert reversal_points(101, 1000, 1000, 101) == 0


def test_the_highest_reached_tier_applies() -> None:
    levels = [TierLevel("silver", 1, 1000, Decimal("1.2")), TierLevel("gold", 2, 5000, Decimal("1.5"))]
    assert tier_for(levels, 999) is None
    assert tier_for(levels, 1000) == levels[0]
    assert tier_for(levels, 7000) == levels[1]


@given(st.text(max_size=20), st.text(max_size=40))
def test_a_paid_orders_earning_id_bytes_are_its_transfer_id(merchant_id: str, order_id: str) -> None:
    expected = transfer_id(merchant_id, "order", order_id, "purchase")
    assert purchase_transfer_id_bytes(merchant_id, order_id) == expected.bytes
