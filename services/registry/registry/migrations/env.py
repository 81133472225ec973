"""Alembic environment of the registry."""

from duban_shared.migrations import run_env
from registry.models import RegistryBase

run_env(RegistryBase.metadata)
