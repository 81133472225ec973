"""Alembic environment of progress."""

from duban_shared.migrations import run_env
from progress.store.models import ProgressBase

run_env(ProgressBase.metadata)
