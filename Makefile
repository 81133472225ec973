# Duban: the two commands are `make up` (run the system) and `make test` (run every test).
.PHONY: up demo test chaos deps lint deploy-check compose-smoke docker-stop down clean backup restore

up:            ## run broker, SMTP sink and the three services on SQLite, plan imported
	bash scripts/up.sh

demo:          ## replay 2024 in about 9 minutes on a stack of its own (.run/demo-stack)
	bash scripts/demo.sh

test:          ## lint, types and the whole test suite on real Kafka and PostgreSQL
	bash scripts/test.sh

chaos:         ## the fault suite, long mode (~15 min): load, kill -9s, outages, poison; checks
	bash scripts/bootstrap.sh
	.venv/bin/python -m scripts.chaos

deps:          ## create .venv with the pinned dependencies
	bash scripts/bootstrap.sh

lint:          ## ruff, mypy and the import contracts
	bash scripts/bootstrap.sh
	.venv/bin/ruff check . && .venv/bin/ruff format --check .
	.venv/bin/mypy shared/duban_shared services/registry/registry services/progress/progress services/notifier/notifier scripts/demo scripts/chaos scripts/backup.py
	bash scripts/import-contracts.sh

compose-smoke: ## the compose stack in containers on a local Docker engine, end to end, then down (scripts/compose-smoke.sh)
	bash scripts/compose-smoke.sh

docker-stop:   ## stop the Docker daemon scripts/docker.sh started (images stay in .cache/docker)
	bash scripts/docker.sh stop

deploy-check:  ## static checks of docker-compose.yml, deploy/Dockerfile and deploy/k8s (no Docker needed)
	bash scripts/check-deploy.sh

backup:        ## back up the three databases (SQLite: online backup API; PostgreSQL: pg_dump -Fc) into backups/
	bash scripts/bootstrap.sh
	.venv/bin/python -m scripts.backup backup $(if $(BACKUP_DIR),--dir $(BACKUP_DIR))

restore:       ## restore BACKUP=backups/backup-<time> into the databases (stop the services first)
	@test -n "$(BACKUP)" || { echo 'make restore BACKUP=backups/backup-<time> (make backup lists it; python -m scripts.backup list)'; exit 2; }
	bash scripts/bootstrap.sh
	.venv/bin/python -m scripts.backup restore "$(BACKUP)" $(RESTORE_FLAGS)

bench::        ## benchmarks, not tests (bench/run.sh; figures in docs/benchmarks.md)
	bash bench/run.sh

down:          ## stop the broker, PostgreSQL and Jaeger started by up or test
	bash scripts/kafka.sh stop
	bash scripts/postgres.sh stop
	bash scripts/jaeger.sh stop

clean: down    ## also delete local state (.run); caches in .cache stay
	rm -rf .run test-artifacts
