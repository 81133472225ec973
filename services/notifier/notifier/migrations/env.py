"""Alembic environment of the notifier."""

from duban_shared.migrations import run_env
from notifier.store.models import NotifierBase

run_env(NotifierBase.metadata)
