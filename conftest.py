"""Fixtures for every test folder live in tests/harness.py."""

pytest_plugins = ["tests.harness", "tests.stack"]
