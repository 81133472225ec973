"""Non-SQL I/O of the registry: plan files in their published formats."""
