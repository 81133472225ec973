"""The registry's rules and value types, without I/O: the plan parser, agency names and
identities, plan diffs, stall policies, client secrets, signing key pairs, refusals."""
