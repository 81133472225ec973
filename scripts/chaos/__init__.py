"""The fault suite: the services run as deployed, under load, while faults are injected.

`python -m scripts.chaos [--short]` (`make chaos`; `--short` runs in `make test`). See
docs/chaos.md for what it does, what it checks and the figures of a run.
"""
