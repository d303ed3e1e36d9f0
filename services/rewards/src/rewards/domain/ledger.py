"""The double-entry points ledger for one customer: lots, debt, and the transfers every movement makes.

Every movement is a `Transfer` whose postings sum to zero across these accounts:
- CUSTOMER: the customer's spendable points; its balance is the sum of the lots' remainders, never < 0;
- ISSUED: the merchant's issuing account (the source of earned points, where reversals return to);
- REDEEMED: where spent points go; EXPIRED: where expired points go;
- DEBT: points a customer owes after a refund of points already spent. Its balance is <= 0 (a receivable);
  later earnings repay it before anything reaches the customer's lots.

Functions here take a `Wallet` (the customer's lots and debt) and return the new wallet plus the transfer,
so the same rules run in the consumers, the API and the property tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from uuid import UUID


class Account(StrEnum):
    CUSTOMER = "customer"
    ISSUED = "issued"
    REDEEMED = "redeemed"
    EXPIRED = "expired"
    DEBT = "debt"


class TransferKind(StrEnum):
    EARN = "earn"
    SPEND = "spend"
    REVERSE = "reverse"
    EXPIRE = "expire"
    RESTORE = "restore"
    DEDUCT = "deduct"


class LedgerError(Exception):
    """A movement the ledger refuses; nothing is changed."""


class InsufficientPoints(LedgerError):
    def __init__(self, wanted: int, available: int) -> None:
        super().__init__(f"{wanted} points wanted, {available} available")
        self.wanted = wanted
        self.available = available


class InvalidAmount(LedgerError):
    pass


@dataclass(frozen=True)
class Posting:
    account: Account
    amount: int


@dataclass(frozen=True)
class Transfer:
    id: UUID
    kind: TransferKind
    postings: tuple[Posting, ...]

    def __post_init__(self) -> None:
        if sum(p.amount for p in self.postings) != 0:
            raise LedgerError(f"transfer {self.id} is unbalanced: {self.postings}")

    def amount_on(self, account: Account) -> int:
        return sum(p.amount for p in self.postings if p.account == account)


def transfer(transfer_id: UUID, kind: TransferKind, *postings: Posting) -> Transfer:
    """Build a transfer, dropping zero postings (a fully repaid earn posts nothing to CUSTOMER)."""
    return Transfer(transfer_id, kind, tuple(p for p in postings if p.amount != 0))


@dataclass(frozen=True)
class Lot:
    id: UUID
    points: int
    remaining: int
    expires_at: datetime


@dataclass(frozen=True)
class Allocation:
    """How many points a movement took from (or gave back to) one lot."""

    lot_id: UUID
    points: int


@dataclass(frozen=True)
class Wallet:
    lots: tuple[Lot, ...] = ()
    debt: int = 0

    @property
    def balance(self) -> int:
        return sum(lot.remaining for lot in self.lots)

    def spendable(self, now: datetime) -> int:
        return sum(lot.remaining for lot in self.lots if lot.expires_at > now)


@dataclass(frozen=True)
class Outcome:
    wallet: Wallet
    transfer: Transfer
    allocations: tuple[Allocation, ...] = ()
    debt_repaid: int = 0
    debt_added: int = 0
    new_lot: Lot | None = None


def _positive(points: int) -> None:
    if points <= 0:
        raise InvalidAmount(f"points must be positive, got {points}")


def split_earning(debt: int, points: int) -> tuple[int, int]:
    """(repaid, credited): an earning repays outstanding debt first; the rest becomes a lot."""
    repaid = min(debt, points)
    return repaid, points - repaid


def earn_transfer(transfer_id: UUID, points: int, debt: int) -> tuple[Transfer, int, int]:
    """The transfer of an earning given the customer's debt: (transfer, repaid, credited)."""
    _positive(points)
    repaid, credited = split_earning(debt, points)
    return (
        transfer(
            transfer_id,
            TransferKind.EARN,
            Posting(Account.ISSUED, -points),
            Posting(Account.DEBT, repaid),
            Posting(Account.CUSTOMER, credited),
        ),
        repaid,
        credited,
    )


def earn(wallet: Wallet, transfer_id: UUID, points: int, expires_at: datetime) -> Outcome:
    moved, repaid, credited = earn_transfer(transfer_id, points, wallet.debt)
    lot = Lot(transfer_id, credited, credited, expires_at) if credited else None
    lots = (*wallet.lots, lot) if lot else wallet.lots
    return Outcome(Wallet(lots, wallet.debt - repaid), moved, debt_repaid=repaid, new_lot=lot)


def _take(
    lots: tuple[Lot, ...], order: list[int], points: int
) -> tuple[tuple[Lot, ...], tuple[Allocation, ...]]:
    """Take up to `points` from the lots at the given indices, in that order."""
    updated = list(lots)
    taken: list[Allocation] = []
    left = points
    for index in order:
        if left == 0:
            break
        lot = updated[index]
        part = min(lot.remaining, left)
        if part:
            updated[index] = replace(lot, remaining=lot.remaining - part)
            taken.append(Allocation(lot.id, part))
            left -= part
    return tuple(updated), tuple(taken)


def _fifo_order(lots: tuple[Lot, ...], now: datetime | None) -> list[int]:
    live = [i for i, lot in enumerate(lots) if lot.remaining > 0 and (now is None or lot.expires_at > now)]
    return sorted(live, key=lambda i: (lots[i].expires_at, str(lots[i].id)))


def spend(wallet: Wallet, transfer_id: UUID, points: int, now: datetime) -> Outcome:
    """Spend from the earliest-expiring live lots first; all or nothing."""
    _positive(points)
    available = wallet.spendable(now)
    if points > available:
        raise InsufficientPoints(points, available)
    lots, taken = _take(wallet.lots, _fifo_order(wallet.lots, now), points)
    moved = transfer(
        transfer_id, TransferKind.SPEND, Posting(Account.CUSTOMER, -points), Posting(Account.REDEEMED, points)
    )
    return Outcome(Wallet(lots, wallet.debt), moved, allocations=taken)


def deduct(wallet: Wallet, transfer_id: UUID, points: int, now: datetime) -> Outcome:
    """A staff deduction: like a spend, but the points return to the merchant's issuing account."""
    _positive(points)
    available = wallet.spendable(now)
    if points > available:
        raise InsufficientPoints(points, available)
    lots, taken = _take(wallet.lots, _fifo_order(wallet.lots, now), points)
    moved = transfer(
        transfer_id, TransferKind.DEDUCT, Posting(Account.CUSTOMER, -points), Posting(Account.ISSUED, points)
    )
    return Outcome(Wallet(lots, wallet.debt), moved, allocations=taken)


def reverse(wallet: Wallet, transfer_id: UUID, points: int, prefer_lot: UUID | None = None) -> Outcome:
    """Take back earned points (a refund): from the causing lot first, then FIFO, the shortfall as debt."""
    _positive(points)
    order = _fifo_order(wallet.lots, None)
    preferred = [i for i in order if wallet.lots[i].id == prefer_lot]
    order = preferred + [i for i in order if i not in preferred]
    lots, taken = _take(wallet.lots, order, points)
    recovered = sum(a.points for a in taken)
    shortfall = points - recovered
    moved = transfer(
        transfer_id,
        TransferKind.REVERSE,
        Posting(Account.CUSTOMER, -recovered),
        Posting(Account.DEBT, -shortfall),
        Posting(Account.ISSUED, points),
    )
    return Outcome(Wallet(lots, wallet.debt + shortfall), moved, allocations=taken, debt_added=shortfall)


def restore(wallet: Wallet, transfer_id: UUID, allocations: tuple[Allocation, ...]) -> Outcome:
    """Give spent points back (a cancelled redemption): debt is repaid first, the rest returns to the
    lots it came from, latest-expiring first, so the customer keeps the longest-lived points."""
    points = sum(a.points for a in allocations)
    _positive(points)
    repaid = min(wallet.debt, points)
    by_id = {lot.id: i for i, lot in enumerate(wallet.lots)}
    updated = list(wallet.lots)
    to_restore = points - repaid
    restored: list[Allocation] = []
    ordered = sorted(allocations, key=lambda a: updated[by_id[a.lot_id]].expires_at, reverse=True)
    for allocation in ordered:
        if to_restore == 0:
            break
        part = min(allocation.points, to_restore)
        index = by_id[allocation.lot_id]
        updated[index] = replace(updated[index], remaining=updated[index].remaining + part)
        restored.append(Allocation(allocation.lot_id, part))
        to_restore -= part
    moved = transfer(
        transfer_id,
        TransferKind.RESTORE,
        Posting(Account.REDEEMED, -points),
        Posting(Account.DEBT, repaid),
        Posting(Account.CUSTOMER, points - repaid),
    )
    return Outcome(
        Wallet(tuple(updated), wallet.debt - repaid), moved, allocations=tuple(restored), debt_repaid=repaid
    )


def expire(wallet: Wallet, transfer_id: UUID, now: datetime) -> Outcome | None:
    """Expire whatever is left of every lot whose expiry has passed; None when nothing is due."""
    due = [i for i, lot in enumerate(wallet.lots) if lot.remaining > 0 and lot.expires_at <= now]
    if not due:
        return None
    lots, taken = _take(wallet.lots, due, sum(wallet.lots[i].remaining for i in due))
    points = sum(a.points for a in taken)
    moved = transfer(
        transfer_id, TransferKind.EXPIRE, Posting(Account.CUSTOMER, -points), Posting(Account.EXPIRED, points)
    )
    return Outcome(Wallet(lots, wallet.debt), moved, allocations=taken)


@dataclass
class Book:
    """Applies transfers once each, by id, and keeps every account's balance: the ledger in miniature.

    The database does the same with a primary key on the transfer id; tests use this to state the rules.
    """

    balances: dict[Account, int] = field(default_factory=dict)
    applied: set[UUID] = field(default_factory=set)

    def apply(self, moved: Transfer) -> bool:
        if moved.id in self.applied:
            return False
        self.applied.add(moved.id)
        for posting in moved.postings:
            self.balances[posting.account] = self.balances.get(posting.account, 0) + posting.amount
        return True

    def balance(self, account: Account) -> int:
        return self.balances.get(account, 0)
