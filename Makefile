# Fleetdeck: `make run` starts the embedded platform, `make test` runs the whole suite.
# Only Python 3.11+ is needed; everything else is installed into .venv from the package registries.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint format venv migrate seed worker beat web clean check-deploy

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -c 'import sys; sys.exit("Fleetdeck needs Python 3.11 or newer" if sys.version_info < (3, 11) else 0)'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

migrate: venv
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_demo

run: seed
	$(PY) scripts/run_embedded.py

web: venv
	$(PY) manage.py runserver 127.0.0.1:8000

worker: venv
	$(VENV)/bin/celery -A platform_site worker --loglevel=INFO --concurrency=2

beat: venv
	$(VENV)/bin/celery -A platform_site beat --loglevel=INFO

lint: venv
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: lint
	$(PY) -m pytest

check-deploy: venv
	FLEETDECK_ENV=production SECRET_KEY=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))') \
	ALLOWED_HOSTS=fleetdeck.example.com $(PY) manage.py check --deploy --fail-level WARNING

clean:
	rm -rf $(VENV) var/static var/cache var/broker
