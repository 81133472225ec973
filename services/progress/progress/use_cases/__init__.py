"""Progress's use cases: applying reports (reports) and registry snapshots (work_points),
judging and announcing transitions (judging), sweeping due work points (sweep), closure review
(closure), ingestion over HTTP (ingestion), and what a caller may read (reading). Each opens its
own transaction; a transition is written to the outbox inside it."""
