"""The daily check-in lottery: committed seed, draw, reveal, verification, event and announcement."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from content.publisher.service import draw_lotteries, open_lotteries, publish_all_due
from meadow_contracts import Topic
from meadow_runtime.testing.harness import ServiceHarness
from meadow_runtime.testing.kafka import TopicReader, eventually

from .helpers import join, make_group, merchant


async def test_lottery_draws_reveals_verifies_and_announces(svc: ServiceHarness) -> None:
    m = merchant()
    group, other_group = await make_group(svc, m), await make_group(svc, m)
    members = [f"c{i}" for i in range(12)]
    await join(svc, m, group, *members)
    call = await svc.client.post(
        "/v1/posts",
        json={
            "kind": "check_in_call",
            "title": "今日打卡",
            "group_ids": [str(group)],
            "schedule": {"kind": "now"},
        },
        headers=svc.auth(m),
    )
    await publish_all_due(svc.uow, datetime.now(UTC) + timedelta(seconds=1))
    post_id = call.json()["id"]

    check_ins: list[dict[str, Any]] = []
    for customer in members[:10]:
        response = await svc.client.post(
            f"/v1/posts/{post_id}/comments",
            json={"kind": "check_in", "body": "打卡"},
            headers=svc.auth(m, role="customer", customer_id=customer),
        )
        assert response.status_code == 201, response.text
        check_ins.append(response.json())
    thoughtful = check_ins[3]
    await svc.client.patch(f"/v1/comments/{thoughtful['id']}", json={"thoughtful": True}, headers=svc.auth(m))
    await svc.client.patch(f"/v1/comments/{check_ins[4]['id']}", json={"hidden": True}, headers=svc.auth(m))
    day = datetime.fromisoformat(check_ins[0]["created_at"]).astimezone(ZoneInfo("Asia/Shanghai")).date()

    created = await svc.client.post(
        "/v1/lotteries",
        json={
            "post_id": post_id,
            "draw_date": day.isoformat(),
            "draw_at": datetime.now(UTC).isoformat(),
            "winners": 3,
            "prize_points": 50,
            "thoughtful_weight": 5,
        },
        headers=svc.auth(m),
    )
    assert created.status_code == 201, created.text
    lottery = created.json()
    assert lottery["seed"] is None
    assert lottery["winners"] is None
    commitment = lottery["seed_sha256"]

    assert await draw_lotteries(svc.uow, datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert await draw_lotteries(svc.uow, datetime.now(UTC) + timedelta(seconds=1)) == 0  # drawn once only

    drawn = (await svc.client.get(f"/v1/lotteries/{lottery['id']}", headers=svc.auth(m))).json()
    assert hashlib.sha256(drawn["seed"].encode()).hexdigest() == commitment
    entrants = {e["customer_id"]: e["weight"] for e in drawn["entrants"]}
    assert set(entrants) == set(members[:10]) - {members[4]}  # the hidden check-in does not enter
    assert entrants[thoughtful["customer_id"]] == 5
    assert len(drawn["winners"]) == 3
    assert set(drawn["winners"]) <= set(entrants)

    member = svc.auth(m, role="customer", customer_id="c0")
    verified = (await svc.client.get(f"/v1/lotteries/{lottery['id']}/verify", headers=member)).json()
    assert verified["valid"] is True
    assert verified["expected_winners"] == drawn["winners"]
    tampered_seed = ("0" if drawn["seed"][0] != "0" else "1") + drawn["seed"][1:]
    tampered = await svc.client.get(
        f"/v1/lotteries/{lottery['id']}/verify", params={"seed": tampered_seed}, headers=member
    )
    assert tampered.json()["valid"] is False
    assert "commit" in tampered.json()["reason"]

    published_parts = {
        "seed": drawn["seed"],
        "seed_sha256": commitment,
        "entrants": drawn["entrants"],
        "winners_count": 3,
        "winners": list(reversed(drawn["winners"])),
    }
    assert (await svc.client.post("/v1/lotteries/verify", json=published_parts, headers=member)).json()[
        "valid"
    ] is False
    published_parts["winners"] = drawn["winners"]
    assert (await svc.client.post("/v1/lotteries/verify", json=published_parts, headers=member)).json()[
        "valid"
    ] is True

    # lottery.drawn goes out with the seed, and the announcement is published to all the merchant's groups.
    await publish_all_due(svc.uow, datetime.now(UTC) + timedelta(seconds=1))
    await svc.publish_outbox()
    async with TopicReader(svc.settings, Topic.CONTENT.value) as reader:

        async def mine() -> list[Any]:
            await reader.read_available()
            return [e for e in reader.envelopes() if e.merchant_id == m]

        events = await eventually(
            mine, until=lambda found: any(e.data.get("kind") == "lottery" for e in found), timeout=20
        )
    drawn_events = [e for e in events if e.type == "content.lottery_drawn.v1"]
    assert len(drawn_events) == 1
    assert drawn_events[0].data["winners"] == drawn["winners"]
    assert drawn_events[0].data["seed"] == drawn["seed"]
    assert drawn_events[0].data["prize_points"] == 50
    announcement = next(e for e in events if e.data.get("kind") == "lottery")
    assert announcement.data["post_id"] == drawn["announcement_post_id"]
    assert set(announcement.data["group_ids"]) == {str(group), str(other_group)}


async def test_lottery_needs_a_check_in_call(svc: ServiceHarness) -> None:
    m = merchant()
    group = await make_group(svc, m)
    text = await svc.client.post(
        "/v1/posts", json={"kind": "text", "title": "t", "group_ids": [str(group)]}, headers=svc.auth(m)
    )
    response = await svc.client.post(
        "/v1/lotteries",
        json={
            "post_id": text.json()["id"],
            "draw_date": "2030-01-01",
            "draw_at": "2030-01-01T12:00:00Z",
            "winners": 1,
            "prize_points": 10,
        },
        headers=svc.auth(m),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "/post_id"

    call = await svc.client.post(
        "/v1/posts",
        json={"kind": "check_in_call", "title": "c", "group_ids": [str(group)]},
        headers=svc.auth(m),
    )
    early = await svc.client.post(
        "/v1/lotteries",
        json={
            "post_id": call.json()["id"],
            "draw_date": "2030-01-02",
            "draw_at": "2030-01-01T12:00:00Z",
            "winners": 1,
            "prize_points": 10,
        },
        headers=svc.auth(m),
    )
    assert early.status_code == 422
    assert early.json()["errors"][0]["pointer"] == "/draw_at"


async def test_a_check_in_call_opens_its_own_daily_lottery(svc: ServiceHarness) -> None:
    m = merchant()
    group = await make_group(svc, m)
    await join(svc, m, group, "early", "bird")
    bad = await svc.client.post(
        "/v1/posts",
        json={
            "kind": "text",
            "title": "t",
            "group_ids": [str(group)],
            "check_in_lottery": {"draw_time": "21:00", "winners": 1, "prize_points": 5},
        },
        headers=svc.auth(m),
    )
    assert bad.json()["errors"][0]["pointer"] == "/check_in_lottery"
    call = await svc.client.post(
        "/v1/posts",
        json={
            "kind": "check_in_call",
            "title": "打卡",
            "group_ids": [str(group)],
            "schedule": {"kind": "now"},
            "check_in_lottery": {"draw_time": "23:59:59", "winners": 1, "prize_points": 5},
        },
        headers=svc.auth(m),
    )
    assert call.status_code == 201, call.text
    now = datetime.now(UTC) + timedelta(seconds=1)
    await publish_all_due(svc.uow, now)

    assert await open_lotteries(svc.uow, now) == 1
    assert await open_lotteries(svc.uow, now) == 0  # one per day, however often the scheduler looks
    lotteries = (await svc.client.get("/v1/lotteries", headers=svc.auth(m))).json()["items"]
    assert len(lotteries) == 1
    assert lotteries[0]["seed"] is None
    assert lotteries[0]["draw_date"] == now.astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()

    for customer in ("early", "bird"):
        response = await svc.client.post(
            f"/v1/posts/{call.json()['id']}/comments",
            json={"kind": "check_in", "body": "打卡"},
            headers=svc.auth(m, role="customer", customer_id=customer),
        )
        assert response.status_code == 201
    draw_at = datetime.fromisoformat(lotteries[0]["draw_at"])
    assert await draw_lotteries(svc.uow, draw_at - timedelta(seconds=1)) == 0
    assert await draw_lotteries(svc.uow, draw_at) == 1
    drawn = (await svc.client.get(f"/v1/lotteries/{lotteries[0]['id']}", headers=svc.auth(m))).json()
    assert drawn["winners"][0] in {"early", "bird"}
    assert await open_lotteries(svc.uow, now + timedelta(days=2)) == 0  # the call asked for one day only
