"""Bad input is a problem+json 4xx that writes nothing; tenants never see each other; staff roles hold."""

from typing import Any

import pytest
from sqlalchemy import text

from meadow_runtime.testing.harness import ServiceHarness


async def row_counts(svc: ServiceHarness) -> dict[str, int]:
    async with svc.uow() as uow:
        counts = {}
        for table in ("groups", "subgroups", "memberships", "invites", "blacklist", "audit_log", "outbox"):
            counts[table] = int(await uow.session.scalar(text(f"SELECT count(*) FROM {table}")) or 0)
        return counts


# ["2026-01-01T00:00:00+00:00", "not-a-uuid"], encoded as the API encodes cursors
NOT_A_UUID_CURSOR = "WyIyMDI2LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwgIm5vdC1hLXV1aWQiXQ"


@pytest.mark.parametrize(
    ("method", "path", "body", "pointer"),
    [
        ("post", "/v1/groups", {"name": ""}, "/name"),
        ("post", "/v1/groups", {"name": "x", "subgroup_capacity": 0}, "/subgroup_capacity"),
        (
            "post",
            "/v1/groups",
            {"name": "x", "join_rules": {"required_mode": "most"}},
            "/join_rules/required_mode",
        ),
        (
            "post",
            "/v1/groups",
            {"name": "x", "join_rules": {"min_tier_rank": -1}},
            "/join_rules/min_tier_rank",
        ),
        ("post", "/v1/groups", {"name": "x", "colour": "red"}, "/colour"),
        ("post", "/v1/groups/{group}/members", {}, "/customer_id"),
        ("post", "/v1/groups/{group}/members", {"customer_id": ""}, "/customer_id"),
        ("post", "/v1/groups/not-a-uuid/members", {"customer_id": "c"}, "/path/group_id"),
        ("post", "/v1/groups/{group}/invites", {"kind": "referral"}, "/inviter_customer_id"),
        ("post", "/v1/groups/{group}/invites", {"kind": "link", "max_uses": 0}, "/max_uses"),
        (
            "post",
            "/v1/groups/{group}/invites",
            {"kind": "link", "expires_at": "2026-01-01T00:00:00"},
            "/expires_at",
        ),
        ("post", "/v1/blacklist", {"reason": "no customer"}, "/customer_id"),
        ("put", "/v1/settings", {"smart_invites_per_week": -1}, "/smart_invites_per_week"),
        ("post", "/v1/product-joins", {"customer_id": "c"}, "/product_id"),
        ("get", "/v1/members?cursor=garbage", None, "/cursor"),
        # a well-formed cursor whose item id is not a UUID
        ("get", f"/v1/members?cursor={NOT_A_UUID_CURSOR}", None, "/cursor"),
    ],
)
async def test_bad_input_is_a_problem_naming_the_field_and_writes_nothing(
    svc: ServiceHarness, create_group: Any, method: str, path: str, body: Any, pointer: str
) -> None:
    group = await create_group(name="safety")
    before = await row_counts(svc)
    response = await svc.client.request(method, path.format(group=group["id"]), json=body, headers=svc.auth())
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert pointer in [e["pointer"] for e in response.json()["errors"]]
    assert await row_counts(svc) == before


async def test_merchant_b_can_neither_read_nor_change_merchant_a_groups(
    svc: ServiceHarness, create_group: Any, join: Any
) -> None:
    group = await create_group(name="tenant-a")
    assert (await join(group["id"], "ta1")).status_code == 200
    b = svc.auth("m-b", "owner")
    gid = group["id"]
    attempts = [
        await svc.client.get(f"/v1/groups/{gid}", headers=b),
        await svc.client.patch(f"/v1/groups/{gid}", json={"name": "mine now"}, headers=b),
        await svc.client.delete(f"/v1/groups/{gid}", headers=b),
        await svc.client.post(f"/v1/groups/{gid}/members", json={"customer_id": "tb1"}, headers=b),
        await svc.client.delete(f"/v1/groups/{gid}/members/ta1", headers=b),
        await svc.client.post(f"/v1/groups/{gid}/invites", json={"kind": "link"}, headers=b),
        await svc.client.post(f"/v1/groups/{gid}/leave", json={"customer_id": "ta1"}, headers=b),
    ]
    assert [a.status_code for a in attempts] == [404] * len(attempts)
    assert all(a.headers["content-type"].startswith("application/problem+json") for a in attempts)
    listed = await svc.client.get("/v1/groups", headers=b)
    assert gid not in {g["id"] for g in listed.json()["items"]}
    members = await svc.client.get("/v1/members", params={"group_id": gid}, headers=b)
    assert members.json()["items"] == []
    still = await svc.client.get(f"/v1/groups/{gid}", headers=svc.auth())
    assert (still.json()["name"], still.json()["member_count"], still.json()["archived_at"]) == (
        "tenant-a",
        1,
        None,
    )


async def test_roles_customers_act_only_for_themselves_and_only_owners_manage_staff(
    svc: ServiceHarness, create_group: Any
) -> None:
    group = await create_group(name="roles")
    as_other = await svc.client.post(
        f"/v1/groups/{group['id']}/members",
        json={"customer_id": "victim"},
        headers=svc.auth("m1", "customer", "me"),
    )
    assert as_other.status_code == 403
    assert (
        await svc.client.post("/v1/groups", json={"name": "x"}, headers=svc.auth("m1", "support"))
    ).status_code == 403
    assert (await svc.client.get("/v1/groups", headers=svc.auth("m1", "customer", "me"))).status_code == 403
    operator = svc.auth("m1", "operator")
    assert (
        await svc.client.post("/v1/staff", json={"subject": "x", "role": "support"}, headers=operator)
    ).status_code == 403
    assert (await svc.client.get("/v1/audit-log", headers=operator)).status_code == 403
    assert (await svc.client.get("/v1/members")).status_code == 401

    # The owner registers the operator's account as support: its token's role no longer counts.
    added = await svc.client.post(
        "/v1/staff",
        json={"subject": "operator-m1", "role": "support", "display_name": "Ann"},
        headers=svc.auth(),
    )
    assert added.status_code == 201, added.text
    assert (
        await svc.client.patch(f"/v1/groups/{group['id']}", json={"name": "y"}, headers=operator)
    ).status_code == 403
    disabled = await svc.client.patch("/v1/staff/operator-m1", json={"disabled": True}, headers=svc.auth())
    assert disabled.json()["disabled_at"] is not None
    assert (await svc.client.get("/v1/groups", headers=operator)).status_code == 403

    log = (await svc.client.get("/v1/audit-log", params={"limit": 500}, headers=svc.auth())).json()["items"]
    actions = [(e["actor"], e["action"], e["target"]) for e in log]
    assert ("owner-m1", "group.created", group["id"]) in actions
    assert ("owner-m1", "staff.added", "operator-m1") in actions
    assert ("owner-m1", "staff.updated", "operator-m1") in actions


async def test_member_list_pages_with_filters_and_never_repeats(
    svc: ServiceHarness, create_group: Any, join: Any
) -> None:
    group = await create_group(name="paging", subgroup_capacity=4)
    for n in range(10):
        assert (await join(group["id"], f"pg{n}")).status_code == 200
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"group_id": group["id"], "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await svc.client.get("/v1/members", params=params, headers=svc.auth("m1", "support"))).json()
        seen += [m["customer_id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"pg{n}" for n in range(10)]
    second = (await svc.client.get(f"/v1/groups/{group['id']}", headers=svc.auth())).json()["subgroups"][1]
    in_second = await svc.client.get("/v1/members", params={"subgroup_id": second["id"]}, headers=svc.auth())
    assert [m["customer_id"] for m in in_second.json()["items"]] == ["pg4", "pg5", "pg6", "pg7"]
    since = in_second.json()["items"][-1]["joined_at"]
    later = await svc.client.get(
        "/v1/members", params={"group_id": group["id"], "joined_since": since}, headers=svc.auth()
    )
    assert [m["customer_id"] for m in later.json()["items"]] == ["pg7", "pg8", "pg9"]


async def test_one_click_join_picks_the_products_group_then_the_categorys(
    svc: ServiceHarness, create_group: Any
) -> None:
    by_category = await create_group(name="辅食新手群", categories=["baby-food"])
    by_product = await create_group(
        name="奶粉老客群-sku", product_ids=["sku-milk-1"], categories=["baby-food"]
    )
    storefront = svc.auth("m1", "service")

    async def click(customer: str, product: str, category: str | None = None) -> Any:
        body = {"customer_id": customer, "product_id": product, "category": category}
        return await svc.client.post("/v1/product-joins", json=body, headers=storefront)

    assert (await click("pc1", "sku-milk-1", "baby-food")).json()["group_id"] == by_product["id"]
    assert (await click("pc2", "sku-puree-9", "baby-food")).json()["group_id"] == by_category["id"]
    repeat = await click("pc1", "sku-milk-1")
    assert (repeat.json()["group_id"], repeat.json()["already_member"]) == (by_product["id"], True)
    nothing = await click("pc3", "sku-unknown")
    assert nothing.status_code == 404
    assert nothing.headers["content-type"].startswith("application/problem+json")


async def test_capacity_changes_respect_seated_members_and_archiving_stops_joins(
    svc: ServiceHarness, create_group: Any, join: Any
) -> None:
    group = await create_group(name="resize", subgroup_capacity=2, max_subgroups=1)
    for customer in ("rs1", "rs2"):
        assert (await join(group["id"], customer)).status_code == 200
    assert (await join(group["id"], "rs3")).json()["reason"] == "group_full"

    too_small = await svc.client.patch(
        f"/v1/groups/{group['id']}", json={"subgroup_capacity": 1}, headers=svc.auth()
    )
    assert (too_small.status_code, too_small.json()["pointer"]) == (409, "/subgroup_capacity")
    grown = await svc.client.patch(
        f"/v1/groups/{group['id']}", json={"subgroup_capacity": 3}, headers=svc.auth()
    )
    assert [s["capacity"] for s in grown.json()["subgroups"]] == [3]
    assert (await join(group["id"], "rs3")).json()["subgroup_number"] == 1

    archived = await svc.client.delete(f"/v1/groups/{group['id']}", headers=svc.auth())
    assert archived.json()["archived_at"] is not None
    refused = await join(group["id"], "rs4")
    assert (refused.status_code, refused.json()["reason"]) == (409, "group_archived")


async def test_openapi_documents_the_join_refusals(svc: ServiceHarness) -> None:
    schema = (await svc.client.get("/openapi.json")).json()
    join_post = schema["paths"]["/v1/groups/{group_id}/members"]["post"]
    assert "409" in join_post["responses"]
    assert "/v1/eligibility" in schema["paths"]
    assert "/v1/audit-log" in schema["paths"]
