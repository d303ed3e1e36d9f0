"""Migrations that move ledger data: what a database written before them holds afterwards, both ways."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import psycopg
import pytest
from alembic import command

from meadow_runtime.db import plain_url
from meadow_runtime.migrations import alembic_config, upgrade
from rewards.app import MIGRATIONS_DIR

LEGS = {"issued": -100, "debt": 30, "customer": 70}


def _postings_before_0009(conn: psycopg.Connection[Any], transfer_id: object, legs: dict[str, int]) -> None:
    conn.execute(
        "INSERT INTO transfers (id, merchant_id, customer_id, kind, reason, points, occurred_at) "
        "VALUES (%s, 'm', 'c1', 'earn', 'purchase', 100, now())",
        (transfer_id,),
    )
    for account, amount in legs.items():
        conn.execute("INSERT INTO postings VALUES (%s, %s, %s)", (transfer_id, account, amount))


def test_postings_move_into_their_transfer_and_back(infrastructure: Any) -> None:
    url = infrastructure.fresh_database(MIGRATIONS_DIR)
    config = alembic_config(MIGRATIONS_DIR, url)
    command.downgrade(config, "0008")
    transfer_id = uuid4()
    with psycopg.connect(plain_url(url), autocommit=True) as conn:
        _postings_before_0009(conn, transfer_id, LEGS)

        upgrade(MIGRATIONS_DIR, url)
        row = conn.execute(
            "SELECT posted_customer, posted_issued, posted_redeemed, posted_expired, posted_debt "
            "FROM transfers WHERE id = %s",
            (transfer_id,),
        ).fetchone()
        assert row == (70, -100, 0, 0, 30)
        view = conn.execute("SELECT account, amount FROM postings WHERE transfer_id = %s", (transfer_id,))
        assert dict(view.fetchall()) == LEGS
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                "INSERT INTO transfers (id, merchant_id, customer_id, kind, points, occurred_at, "
                "posted_customer) VALUES (%s, 'm', 'c1', 'deduct', 5, now(), -5)",
                (uuid4(),),
            )

        command.downgrade(config, "0008")
        table = conn.execute("SELECT account, amount FROM postings WHERE transfer_id = %s", (transfer_id,))
        assert dict(table.fetchall()) == LEGS
        relkind = conn.execute("SELECT relkind FROM pg_class WHERE relname = 'postings'").fetchone()
        assert relkind == ("r",)


def test_a_posting_without_its_transfer_stops_the_upgrade(infrastructure: Any) -> None:
    url = infrastructure.fresh_database(MIGRATIONS_DIR)
    command.downgrade(alembic_config(MIGRATIONS_DIR, url), "0008")
    with psycopg.connect(plain_url(url), autocommit=True) as conn:
        conn.execute("INSERT INTO postings VALUES (%s, 'customer', 10)", (uuid4(),))
        with pytest.raises(RuntimeError, match="1 postings have no transfer"):
            upgrade(MIGRATIONS_DIR, url)
        assert conn.execute("SELECT count(*) FROM postings").fetchone() == (1,)
