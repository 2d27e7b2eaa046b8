# taskmesh: the one entry point. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV ?= uv
# The no-Docker stack is plain-stdlib Python, runnable before any virtualenv exists.
LOCAL := PYTHONPATH=$(CURDIR)/infra/local/src python3 -m taskmesh_local
SERVICE ?=
COMPOSE := docker compose -f infra/compose/compose.yaml
# True when `make up` would choose compose: a Docker engine answers and local is not forced.
USE_COMPOSE := docker info >/dev/null 2>&1 && [ -z "$$TASKMESH_FORCE_LOCAL" ]

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: uv
uv: ## install uv with pip when it is missing
	@command -v $(UV) >/dev/null 2>&1 || python3 -m pip install --quiet uv

.PHONY: install
install: uv ## create the virtualenv from the lock (all workspace members, dev tools)
	$(UV) sync --all-packages --frozen

.PHONY: up
up: install ## start the whole suite (compose with a Docker engine, else local processes); returns when the gateway is ready
	@if $(USE_COMPOSE); then \
		$(COMPOSE) up -d --build --wait && \
		echo "taskmesh is up: http://127.0.0.1:8080 (API docs: http://127.0.0.1:8080/docs)"; \
	else \
		$(LOCAL) up; \
	fi

.PHONY: down
down: ## stop everything `make up` started (data is kept)
	@if $(USE_COMPOSE); then \
		$(COMPOSE) down; \
	else \
		$(LOCAL) down; \
	fi

.PHONY: stop
stop: ## stop one part: make stop SERVICE=auth|tasks|analytics|gateway|mongo|rabbitmq|redis|jaeger
	@test -n "$(SERVICE)" || { echo "usage: make stop SERVICE=<name>"; exit 2; }
	@if $(USE_COMPOSE); then $(COMPOSE) stop $(SERVICE); else $(LOCAL) stop $(SERVICE); fi

.PHONY: start
start: ## start one part again: make start SERVICE=<name>
	@test -n "$(SERVICE)" || { echo "usage: make start SERVICE=<name>"; exit 2; }
	@if $(USE_COMPOSE); then $(COMPOSE) start $(SERVICE); else $(LOCAL) start $(SERVICE); fi

.PHONY: status
status: ## show which parts of the suite run (compose's containers, or the local processes)
	@if $(USE_COMPOSE); then $(COMPOSE) ps; else $(LOCAL) status; fi

.PHONY: logs
logs: ## follow the logs of the running suite (make logs SERVICE=x for one part)
	@if $(USE_COMPOSE); then $(COMPOSE) logs -f $(SERVICE); else $(LOCAL) logs $(SERVICE); fi

.PHONY: test
test: install ## run every test (unit, integration, contract, deploy, e2e) against real servers
	bash scripts/test.sh

.PHONY: lint
lint: install ## ruff, ruff format --check, mypy --strict on src
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy libs/common/src infra/local/src services/auth/src services/tasks/src services/analytics/src services/gateway/src bench

.PHONY: bench
bench: install ## benchmarks, side by side in one run (not part of the tests)
	bash scripts/bench.sh

.PHONY: client
client: install ## regenerate the typed Python client (clients/python) from the public OpenAPI
	$(UV) run python clients/python/generate.py

.PHONY: asyncapi
asyncapi: install ## regenerate docs/asyncapi.json and the event JSON Schemas from the models
	$(UV) run python -m taskmesh_common.events asyncapi --schemas-dir docs/event-schemas > docs/asyncapi.json.tmp
	mv docs/asyncapi.json.tmp docs/asyncapi.json
