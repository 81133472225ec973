"""The registry's agencies reach the notifier through Kafka: contacts only for agencies the
registry published, and a merge in the registry redirects them to the surviving agency."""

from __future__ import annotations

import uuid

from notifier.store.models import AgencyView

from tests.harness import wait_for
from tests.stack import Stack


async def test_contacts_need_a_published_agency_and_follow_a_merge(stack: Stack) -> None:
    office = await stack.auth(stack.office)
    unknown = await stack.notifier_http.put(
        f"/v1/agencies/{uuid.uuid4()}/contacts/email",
        json={"addresses": ["x@example.cn"]},
        headers=office,
    )
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_agency")

    resolve = await stack.registry_http.get(
        "/v1/agencies/resolve", params={"name": "市资源局"}, headers=office
    )
    resources = resolve.json()["id"]
    merged = await stack.registry_http.post(
        f"/v1/agencies/{resources}/merge", json={"into": str(stack.forestry_id)}, headers=office
    )
    assert merged.status_code == 200, merged.text
    stack.registry.relay.wake()

    async def notifier_knows_the_merge() -> bool:
        async with stack.notifier.sessions() as session:
            view = await session.get(AgencyView, uuid.UUID(resources))
            return view is not None and view.merged_into_id == stack.forestry_id

    await wait_for(notifier_knows_the_merge, what="the merge to reach the notifier")
    refused = await stack.notifier_http.put(
        f"/v1/agencies/{resources}/contacts/email",
        json={"addresses": ["ziyuan@zhaoqing.example.cn"]},
        headers=office,
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "agency_merged"
    assert refused.json()["details"] == {"merged_into": str(stack.forestry_id)}
