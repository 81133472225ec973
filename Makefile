# Duban: the two commands are `make up` (run the system) and `make test` (run every test).
.PHONY: up test deps lint down clean

up:            ## run broker, SMTP sink and the three services on SQLite, plan imported
	bash scripts/up.sh

test:          ## lint, types and the whole test suite on real Kafka and PostgreSQL
	bash scripts/test.sh

deps:          ## create .venv with the pinned dependencies
	bash scripts/bootstrap.sh

lint:          ## ruff and mypy only
	bash scripts/bootstrap.sh
	.venv/bin/ruff check . && .venv/bin/ruff format --check .
	.venv/bin/mypy shared/duban_shared services/registry/registry services/progress/progress services/notifier/notifier

bench::        ## benchmarks, not tests (bench/run.sh; figures in docs/benchmarks.md)
	bash bench/run.sh

down:          ## stop the broker and PostgreSQL started by up or test
	bash scripts/kafka.sh stop
	bash scripts/postgres.sh stop

clean: down    ## also delete local state (.run); caches in .cache stay
	rm -rf .run test-artifacts
