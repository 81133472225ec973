"""Alembic environment of the registry."""

from duban_shared.migrations import run_env
from registry.store import auth_models  # noqa: F401  (puts the auth tables on the metadata)
from registry.store.models import RegistryBase

run_env(RegistryBase.metadata)
