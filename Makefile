# The two commands: `make demo` (the DAGs end to end on the local AWS sandbox) and `make test`.
# Both create the virtualenv from requirements*.txt (pinned, with constraints.txt) on first use.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv demo test test-fast lint bench airflow distributed sandbox-start sandbox-stop clean

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

venv: $(STAMP)

## make demo: start the sandbox, run the DAGs with the real Airflow, leave reports and emails in out/
demo: $(STAMP)
	$(PY) scripts/demo.py --out out

## make test: the whole pytest suite (unit, DAG integrity, end to end on the sandbox)
test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile -q

## make test-fast: everything that needs no emulated AWS and starts no Airflow server or browser: the editing loop
test-fast: $(STAMP)
	$(PY) -m pytest -n 2 -q -m "not sandbox and not server"

## make lint: ruff (style, security, private-name imports), import-linter (the package's layers, no cycles) and
## checkov on the CloudFormation templates (its own .venv-iac, requirements-iac.txt; exceptions justified in the templates)
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	test -x .venv-iac/bin/checkov || ($(PYTHON) -m venv .venv-iac && .venv-iac/bin/pip install --quiet -r requirements-iac.txt -c constraints-iac.txt)
	.venv-iac/bin/checkov --quiet --compact --skip-download --framework cloudformation -d include/templates/cloudformation

## make bench: the benchmarks, printing their figures (not part of make test)
bench: $(STAMP)
	$(PY) bench/run_all.py

## make airflow: airflow standalone (UI on http://localhost:8080) with this repo's DAGs against a running sandbox
airflow: $(STAMP)
	$(PY) scripts/airflow_local.py

## make distributed: the DAGs on a distributed Airflow (PostgreSQL, Redis, scheduler, dag-processor, triggerer,
## api-server, two Celery workers) on loopback, driven through the REST API; checks the store, tears it all down
distributed: $(STAMP)
	$(PY) scripts/distributed.py

sandbox-start: $(STAMP)
	$(PY) -m sandbox start --accounts 12 --port 5055 --state-dir .sandbox

sandbox-stop: $(STAMP)
	$(PY) -m sandbox stop --state-dir .sandbox

clean:
	rm -rf out .airflow .sandbox data .pytest_cache
