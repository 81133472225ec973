"""Progress's SQL: the tables (models), the rows a batch loads and writes back (states), the read
side's queries (queries), ingestion's statements (ingest), the report history (history), the
gauges' queries (gauges), and the dialect helper they share (sql)."""
