"""The notifier's SQL: table models (`models`) and the queries and writes the use cases run."""
