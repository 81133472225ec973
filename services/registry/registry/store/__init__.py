"""The registry's SQL: table models, queries and writes. Functions take a session and never
commit: the use case that calls them owns the transaction."""
