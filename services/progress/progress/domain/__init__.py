"""Progress's rules, free of I/O: the stall model (stall), what a report changes (reports), the
checks a record must pass (checks), the report history's hash chain (chain), a plan's counts
(counts) and the agencies' scorecards (scorecards)."""
