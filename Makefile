# One target per chore. `make run`, `make demo` and `make test` set up everything on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run demo install test test-deps lint format bench migration clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

# A local .env with a fresh random secret key, made once, readable by its owner only (0600).
.env:
	@umask 077 && sed "s|^RADIOSILENCE_SECRET_KEY=.*|RADIOSILENCE_SECRET_KEY=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(48))')|" .env.example > .env
	@echo "wrote .env with a new RADIOSILENCE_SECRET_KEY (keep it: it encrypts mailbox passwords)"

run: $(STAMP) .env
	$(BIN)/radiosilence migrate
	$(BIN)/radiosilence serve --host $(HOST) --port $(PORT)

# A sample mailbox and a demo user, served at once (in a private Dovecot when one is
# installed, else imported from files); the last line says where to sign in.
demo: $(STAMP) .env
	$(BIN)/radiosilence demo --host $(HOST) --port $(PORT)

test-deps:
	bash scripts/install-test-deps.sh
	bash scripts/ensure-postgres.sh

lint: $(STAMP)
	$(BIN)/ruff check app tests bench
	$(BIN)/ruff format --check app tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo

format: $(STAMP)
	$(BIN)/ruff check --fix app tests bench
	$(BIN)/ruff format app tests bench

test: test-deps $(STAMP) lint
	$(BIN)/python -m pytest

bench: $(STAMP) test-deps
	@for b in bench/*_bench.py; do [ -e "$$b" ] || continue; echo "== $$b"; $(BIN)/python "$$b" || exit 1; done

migration: $(STAMP)
	$(BIN)/python -m app.storage.migrate revision "$(MSG)"

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .hypothesis .import_linter_cache
