"""Contacts on every channel: checked on the way in (email, E.164 mobile numbers, configured
WeCom robots), kept in the order they are tried, imported from CSV all or nothing."""

from __future__ import annotations

from tests.stack import Stack

CSV_OK = """agency,channel,address,label
市林业局,sms,138 0013 8000,值班手机
市林业局,email,LinYe@Zhaoqing.example.cn,办公室
市公安局,sms,+86 139-0013-9000,
"""


async def test_contacts_are_normalized_and_kept_in_order(stack: Stack) -> None:
    office = await stack.auth(stack.office)
    path = f"/v1/agencies/{stack.forestry_id}/contacts"
    response = await stack.notifier_http.put(
        path,
        json={
            "contacts": [
                {"channel": "sms", "address": "13800138000", "label": "值班"},
                {"channel": "email", "address": "linye@zhaoqing.example.cn"},
                {"channel": "sms", "address": "+8613800138000"},  # the same number again
            ]
        },
        headers=office,
    )
    assert response.status_code == 200, response.text
    assert [(c["channel"], c["address"], c["status"]) for c in response.json()] == [
        ("sms", "+8613800138000", "active"),
        ("email", "linye@zhaoqing.example.cn", "active"),
    ]
    listed = await stack.notifier_http.get(path, headers=office)
    assert listed.json() == response.json()
    agency = await stack.notifier_http.get(path, headers=await stack.auth(stack.forestry))
    assert (agency.status_code, agency.json()["code"]) == (403, "office_only")


async def test_a_bad_contact_refuses_the_whole_list_with_every_problem(stack: Stack) -> None:
    office = await stack.auth(stack.office)
    path = f"/v1/agencies/{stack.forestry_id}/contacts"
    bad = await stack.notifier_http.put(
        path,
        json={
            "contacts": [
                {"channel": "sms", "address": "0758-2223456"},  # a landline
                {"channel": "sms", "address": "1380013"},
                {"channel": "email", "address": "not-an-address"},
                {"channel": "wecom", "address": "office-robot"},  # none configured
                {"channel": "email", "address": "ok@zhaoqing.example.cn"},
            ]
        },
        headers=office,
    )
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_phone")
    assert [(p["index"], p["code"]) for p in bad.json()["details"]] == [
        (0, "invalid_phone"),
        (1, "invalid_phone"),
        (2, "invalid_email"),
        (3, "unknown_wecom_robot"),
    ]
    assert "not a mobile number" in bad.json()["details"][0]["message"]
    assert "2223456" not in bad.text  # numbers are masked even in errors
    kept = await stack.notifier_http.get(path, headers=office)
    assert [c["address"] for c in kept.json()] == ["linye@zhaoqing.example.cn"]  # untouched


async def test_a_csv_file_replaces_the_contacts_of_the_agencies_it_names(stack: Stack) -> None:
    office = {**await stack.auth(stack.office), "Content-Type": "text/csv"}
    imported = await stack.notifier_http.post(
        "/v1/contacts/import", content=CSV_OK.encode(), headers=office
    )
    assert imported.status_code == 200, imported.text
    assert imported.json() == {"agencies": 2, "contacts": 3}
    forestry = await stack.notifier_http.get(
        f"/v1/agencies/{stack.forestry_id}/contacts", headers=await stack.auth(stack.office)
    )
    assert [(c["channel"], c["address"], c["label"]) for c in forestry.json()] == [
        ("sms", "+8613800138000", "值班手机"),
        ("email", "LinYe@zhaoqing.example.cn", "办公室"),
    ]

    broken = "agency,channel,address\n市林业局,sms,13800138000\n市不存在局,sms,13800138001\n"
    broken += "市公安局,fax,123\n市公安局,email,@\n"
    refused = await stack.notifier_http.post(
        "/v1/contacts/import", content=broken.encode(), headers=office
    )
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_csv")
    assert [(d["line"], d["code"]) for d in refused.json()["details"]] == [
        (3, "unknown_agency"),
        (4, "unknown_channel"),
        (5, "invalid_email"),
    ]
    after = await stack.notifier_http.get(
        f"/v1/agencies/{stack.forestry_id}/contacts", headers=await stack.auth(stack.office)
    )
    assert after.json() == forestry.json()  # all or nothing

    header = await stack.notifier_http.post(
        "/v1/contacts/import", content=b"name,phone\nx,y\n", headers=office
    )
    assert header.json()["details"][0]["code"] == "invalid_header"
