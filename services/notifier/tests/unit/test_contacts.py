"""Contacts as logs and spans may show them."""

from __future__ import annotations

from notifier.domain.contacts import mask


def test_addresses_are_masked_for_logs_and_spans() -> None:
    assert mask("sms", "+8613800138000") == "+86***8000"
    assert mask("email", "linye@zhaoqing.example.cn") == "li***@zhaoqing.example.cn"
    assert mask("wecom", "office-robot") == "office-robot"
