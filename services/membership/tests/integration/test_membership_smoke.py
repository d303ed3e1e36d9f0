from meadow_runtime.testing.harness import ServiceHarness


async def test_create_group_and_join(svc: ServiceHarness) -> None:
    created = await svc.client.post("/v1/groups", json={"name": "奶粉老客群"}, headers=svc.auth())
    assert created.status_code == 201, created.text
    group_id = created.json()["id"]
    joined = await svc.client.post(
        f"/v1/groups/{group_id}/members",
        json={"customer_id": "c1"},
        headers=svc.auth(role="customer", customer_id="c1"),
    )
    assert joined.status_code == 200, joined.text
    assert joined.json()["subgroup_number"] == 1
