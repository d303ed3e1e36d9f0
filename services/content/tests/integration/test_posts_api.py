"""Posts over HTTP: scheduling under caps and quiet hours, drafts, edits, campaigns, and bad input."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from content.publisher.service import publish_all_due
from meadow_contracts import Topic, decode
from meadow_contracts.events import PostPublished
from meadow_runtime.testing.harness import ServiceHarness
from meadow_runtime.testing.kafka import TopicReader

from .helpers import make_group, merchant, row_counts

QUIET = {"quiet_start": "22:00:00", "quiet_end": "08:00:00"}


def future_local(tz: str, days: int, hour: int, minute: int = 0) -> datetime:
    """A local wall-clock time `days` from today in `tz`."""
    today = datetime.now(ZoneInfo(tz)).date()
    return datetime.combine(today + timedelta(days=days), datetime.min.time(), ZoneInfo(tz)).replace(
        hour=hour, minute=minute
    )


def text_post(group_id: uuid.UUID, at: datetime | None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "text",
        "title": "上新",
        "body": "new spring colours",
        "group_ids": [str(group_id)],
    }
    if at is not None:
        body["schedule"] = {"kind": "at", "at": at.isoformat()}
    return body | extra


async def create(svc: ServiceHarness, merchant_id: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await svc.client.post("/v1/posts", json=body, headers=svc.auth(merchant_id))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_quiet_hours_and_caps_in_shanghai(svc: ServiceHarness) -> None:
    m = merchant()
    group = await make_group(svc, m, **QUIET)
    late = await create(svc, m, text_post(group, future_local("Asia/Shanghai", 2, 23, 30)))
    assert parse(late["publish_at"]) == future_local("Asia/Shanghai", 3, 8, 0)
    assert late["rescheduled"] is True
    assert late["schedule_notes"][0]["reason"] == "quiet_hours"
    assert parse(late["requested_at"]) == future_local("Asia/Shanghai", 2, 23, 30)

    for hour in (9, 12, 18):
        assert not (await create(svc, m, text_post(group, future_local("Asia/Shanghai", 5, hour))))[
            "rescheduled"
        ]
    fourth = await create(svc, m, text_post(group, future_local("Asia/Shanghai", 5, 20)))
    assert parse(fourth["publish_at"]) == future_local("Asia/Shanghai", 6, 20)
    assert [n["reason"] for n in fourth["schedule_notes"]] == ["frequency_cap"]
    assert "3 of 3" in fourth["schedule_notes"][0]["detail"]


async def test_quiet_hours_and_caps_in_a_dst_zone(svc: ServiceHarness) -> None:
    m = merchant()
    response = await svc.client.put(
        "/v1/settings", json={"timezone": "America/New_York"}, headers=svc.auth(m)
    )
    assert response.status_code == 200
    group = await make_group(svc, m, max_posts_per_day=1, **QUIET)
    # Find the next US spring-forward or fall-back night within a year and schedule across it.
    tz = ZoneInfo("America/New_York")
    day = datetime.now(tz).date() + timedelta(days=1)

    def noon_offset(d: date) -> timedelta | None:
        return datetime.combine(d, time(12), tz).utcoffset()

    while noon_offset(day) == noon_offset(day + timedelta(days=1)):
        day += timedelta(days=1)
    eve = datetime.combine(day, datetime.min.time(), tz).replace(hour=23)
    after = datetime.combine(day + timedelta(days=1), datetime.min.time(), tz).replace(hour=8)
    late = await create(svc, m, text_post(group, eve))
    assert parse(late["publish_at"]) == after  # 08:00 local after the clocks changed
    assert parse(late["publish_at"]) - eve.astimezone(UTC) != timedelta(
        hours=9
    )  # the night was 8 or 10 hours

    # The cap (1/day) pushes the next post on that local day to the same wall time the following day.
    second = await create(svc, m, text_post(group, after.replace(hour=12)))
    expected = datetime.combine(day + timedelta(days=2), datetime.min.time(), tz).replace(hour=12)
    assert parse(second["publish_at"]) == expected
    assert second["schedule_notes"][0]["reason"] == "frequency_cap"


async def test_draft_edit_schedule_cancel_and_publish(svc: ServiceHarness) -> None:
    m = merchant()
    group = await make_group(svc, m)
    draft = await create(svc, m, text_post(group, None))
    assert draft["status"] == "draft"
    assert draft["publish_at"] is None

    edited = await svc.client.patch(
        f"/v1/posts/{draft['id']}", json={"title": "春季上新"}, headers=svc.auth(m)
    )
    assert edited.json()["title"] == "春季上新"
    scheduled = await svc.client.put(
        f"/v1/posts/{draft['id']}/schedule", json={"kind": "now"}, headers=svc.auth(m)
    )
    assert scheduled.json()["status"] == "scheduled"

    other = await create(svc, m, text_post(group, datetime.now(UTC) + timedelta(hours=1)))
    cancelled = await svc.client.post(f"/v1/posts/{other['id']}/cancel", headers=svc.auth(m))
    assert cancelled.json()["status"] == "cancelled"

    await publish_all_due(svc.uow, datetime.now(UTC) + timedelta(days=1))
    published = (await svc.client.get(f"/v1/posts/{draft['id']}", headers=svc.auth(m))).json()
    assert published["status"] == "published"
    again = await svc.client.post(f"/v1/posts/{draft['id']}/cancel", headers=svc.auth(m))
    assert again.status_code == 409
    still = (await svc.client.get(f"/v1/posts/{other['id']}", headers=svc.auth(m))).json()
    assert still["status"] == "cancelled"
    assert (
        await svc.client.patch(f"/v1/posts/{draft['id']}", json={"title": "x"}, headers=svc.auth(m))
    ).status_code == 409


async def test_cron_posts_publish_and_schedule_their_next_occurrence(svc: ServiceHarness) -> None:
    m = merchant()
    group = await make_group(svc, m, max_posts_per_day=None)
    body = text_post(group, None, schedule={"kind": "cron", "cron": "0 9 * * *"})
    first = await create(svc, m, body)
    fire = parse(first["publish_at"])
    assert fire.astimezone(ZoneInfo("Asia/Shanghai")).hour == 9
    await publish_all_due(svc.uow, fire)
    series = (await svc.client.get("/v1/posts", headers=svc.auth(m))).json()["items"]
    assert sorted(p["status"] for p in series) == ["published", "scheduled"]
    following = next(p for p in series if p["status"] == "scheduled")
    assert parse(following["publish_at"]) == fire + timedelta(days=1)
    assert following["series_id"] == first["id"]


async def test_campaign_bundles_posts_and_cancels_together(svc: ServiceHarness) -> None:
    m = merchant()
    group = await make_group(svc, m, max_posts_per_day=None)
    start = datetime.now(UTC) + timedelta(days=3)
    body = {
        "name": "春季上新",
        "posts": [
            {
                "kind": "early_access",
                "title": "VIP preview",
                "group_ids": [str(group)],
                "early_access": {"min_tier_rank": 2, "public_at": (start + timedelta(days=1)).isoformat()},
                "schedule": {"kind": "at", "at": start.isoformat()},
            },
            {
                "kind": "flash_sale",
                "title": "Flash sale",
                "group_ids": [str(group)],
                "flash_sale": {
                    "starts_at": (start + timedelta(days=1)).isoformat(),
                    "ends_at": (start + timedelta(days=1, hours=2)).isoformat(),
                    "stock_note": "200 left",
                },
                "schedule": {"kind": "at", "at": (start + timedelta(days=1)).isoformat()},
            },
        ],
    }
    response = await svc.client.post("/v1/campaigns", json=body, headers=svc.auth(m))
    assert response.status_code == 201, response.text
    campaign = response.json()
    assert [p["kind"] for p in campaign["posts"]] == ["early_access", "flash_sale"]
    assert campaign["posts"][1]["flash_sale_state"] == "upcoming"
    assert campaign["posts"][0]["min_tier_rank"] == 2
    cancelled = (await svc.client.post(f"/v1/campaigns/{campaign['id']}/cancel", headers=svc.auth(m))).json()
    assert {p["status"] for p in cancelled["posts"]} == {"cancelled"}


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        (
            {"kind": "text", "title": "t", "group_ids": ["UNKNOWN"], "schedule": {"kind": "now"}},
            "/group_ids/0",
        ),
        (
            {
                "kind": "text",
                "title": "t",
                "group_ids": ["KNOWN"],
                "schedule": {"kind": "cron", "cron": "0 0 31 2 *"},
            },
            "/schedule/cron",
        ),
        (
            {"kind": "poll", "title": "which colour?", "group_ids": ["KNOWN"], "schedule": {"kind": "now"}},
            "/poll",
        ),
        (
            {"kind": "poll", "title": "which colour?", "group_ids": ["KNOWN"], "poll": {"options": []}},
            "/poll/options",
        ),
        ({"kind": "text", "title": "t", "group_ids": []}, "/group_ids"),
        (
            {
                "kind": "flash_sale",
                "title": "t",
                "group_ids": ["KNOWN"],
                "flash_sale": {"starts_at": "2030-01-02T10:00:00Z", "ends_at": "2030-01-02T09:00:00Z"},
            },
            "/flash_sale/ends_at",
        ),
    ],
)
async def test_bad_input_is_a_clear_problem_and_writes_nothing(
    svc: ServiceHarness, body: dict[str, Any], pointer: str
) -> None:
    m = merchant()
    known = await make_group(svc, m)
    body = {
        **body,
        "group_ids": [str(known) if g == "KNOWN" else str(uuid.uuid4()) for g in body["group_ids"]],
    }
    before = await row_counts(svc, m)
    response = await svc.client.post("/v1/posts", json=body, headers=svc.auth(m))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["errors"][0]["pointer"] == pointer
    assert await row_counts(svc, m) == before

    # A campaign whose second post is bad creates none of its posts.
    campaign = {"name": "c", "posts": [text_post(known, None), body]}
    response = await svc.client.post("/v1/campaigns", json=campaign, headers=svc.auth(m))
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"].startswith("/posts/1")
    assert await row_counts(svc, m) == before


async def test_another_merchant_sees_and_touches_nothing(svc: ServiceHarness) -> None:
    owner, intruder = merchant(), merchant()
    group = await make_group(svc, owner)
    post = await create(svc, owner, text_post(group, datetime.now(UTC) + timedelta(hours=2)))
    before = await row_counts(svc, owner)
    for method, path, body in [
        ("GET", f"/v1/posts/{post['id']}", None),
        ("PATCH", f"/v1/posts/{post['id']}", {"title": "hijack"}),
        ("POST", f"/v1/posts/{post['id']}/cancel", None),
    ]:
        response = await svc.client.request(method, path, json=body, headers=svc.auth(intruder))
        assert response.status_code == 404, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    # Targeting another merchant's group is an unknown group.
    response = await svc.client.post("/v1/posts", json=text_post(group, None), headers=svc.auth(intruder))
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "/group_ids/0"
    assert (await svc.client.get("/v1/posts", headers=svc.auth(intruder))).json()["items"] == []
    assert await row_counts(svc, owner) == before


async def test_members_cannot_write_posts(svc: ServiceHarness) -> None:
    m = merchant()
    group = await make_group(svc, m)
    response = await svc.client.post(
        "/v1/posts", json=text_post(group, None), headers=svc.auth(m, role="customer", customer_id="c1")
    )
    assert response.status_code == 403


async def test_published_event_carries_the_post(svc: ServiceHarness) -> None:
    m = merchant()
    group = await make_group(svc, m)
    post = await create(svc, m, text_post(group, None, schedule={"kind": "now"}))
    await publish_all_due(svc.uow, datetime.now(UTC) + timedelta(seconds=1))
    await svc.publish_outbox()
    async with TopicReader(svc.settings, Topic.CONTENT.value) as reader:

        async def mine() -> list[Any]:
            await reader.read_available()
            return [e for e in reader.envelopes() if e.data.get("post_id") == post["id"]]

        from meadow_runtime.testing.kafka import eventually

        found = await eventually(mine)
    assert found[0].merchant_id == m
    assert found[0].subject == post["id"]
    event = decode(found[0])
    assert isinstance(event, PostPublished)
    assert event.group_ids == (group,)
    assert event.kind == "text"
    assert event.title == post["title"]
