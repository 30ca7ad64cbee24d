# Two commands matter on a fresh machine: `make run` and `make test`. Both set themselves up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov's pins conflict with requirements-dev.txt's: it gets a virtualenv of its own (requirements-checkov.txt).
CHECKOV_VENV := $(VENV)/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
STAGE ?= local
# Where make package and make deploy write (chalice deploy keeps its state under it: keep it).
BUILD ?= build
# make deploy's stack parameters, Name=value separated by spaces (infra/pipeline.py): PaymentWaitSeconds=5
PARAMETERS ?=
# make package/deploy's stage settings laid over .chalice/config.json's (infra/stage_settings.py): SETTINGS=ops/prod.json
SETTINGS ?=
SETTINGS_ARG = $(if $(SETTINGS),--settings $(abspath $(SETTINGS)))
PYTEST_ARGS ?=
# make bench prints every figure, the test suite's wall time included; BENCH_ARGS= leaves that one out.
BENCH_ARGS ?= --with-test-suite
API_URL ?=
AWS_ENDPOINT ?=
LAB_PORT ?= 8888

.PHONY: help setup run test static-checks pytest lint typecheck unit integration e2e bench lock admin clean package deploy destroy runbooks lab security fuzz

help:
	@echo "make run     start the local stage (embedded AWS + every event source + HTTP API)"
	@echo "make test    ruff, mypy, the security scan and every test"
	@echo "make security  bandit over the code (secret values: tests/unit/test_no_secrets.py)"
	@echo "make fuzz    schemathesis against a local stage, 1,200 requests (make test runs 240)"
	@echo "make bench   measure cold start, package size, warm overhead, cost per order (writes docs/benchmarks.md)"
	@echo "make admin   create or promote the first admin of a stage (EMAIL=, PASSWORD=)"
	@echo "make lock    re-pin requirements-dev.txt from requirements-dev.in"
	@echo "make runbooks  run the four notebooks with papermill (a local stage, unless API_URL= is given) into build/runbooks"
	@echo "make lab     JupyterLab on notebooks/, parameters pointing at make run's stage (LAB_PORT=8888)"
	@echo "make package STAGE=dev  one SAM template (functions, API, every resource) in build/dev/out, cfn-linted"
	@echo "make deploy  STAGE=dev  the chalice deploy path: resource stack, chalice deploy, then what it cannot set"
	@echo "make destroy STAGE=dev  remove what make deploy created (on AWS, or the embedded AWS with AWS_ENDPOINT_URL)"

# Creates the virtualenv when missing and reinstalls whenever a requirements file changes.
# uv (pinned in requirements-dev.txt) installs the same pins as pip in a few seconds; pip takes over if
# uv cannot reach the index. uv compiles no bytecode (pip compiles every module, 25 to 40 s here);
# Python writes it on first import instead, so only what runs is compiled, once.
UV_INSTALL = $(BIN)/uv pip install --quiet
# A shell that sets PYTHONDONTWRITEBYTECODE would make every process (each test's local stage, each
# notebook kernel) compile its imports again, about 2 s a process: not for make's commands.
unexport PYTHONDONTWRITEBYTECODE
$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $$(grep '^uv==' requirements-dev.txt)
	$(UV_INSTALL) --python $(BIN)/python -r requirements-dev.txt \
	  || $(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

# Inside .venv, so that make clean and the ignore rules cover it; infra/checks.py runs its interpreter (infra/checkov_run.py).
$(CHECKOV_STAMP): requirements-checkov.txt | $(STAMP)
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(UV_INSTALL) --python $(CHECKOV_VENV)/bin/python -r requirements-checkov.txt \
	  || $(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $(CHECKOV_STAMP)

setup: $(STAMP) $(CHECKOV_STAMP)

run: $(STAMP)
	$(BIN)/python -m localstage

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# --dist loadscope: a module's tests run on one worker, so a module's own stage (tests/e2e) starts
# once per run, and the modules that share the session's stage go out as one unit, so it starts once
# too (tests/conftest.py). Units go out in the order tests/conftest.py sorts them (longest layers first).
# Three workers on two cores: e2e and runbook tests spend much of their time waiting on a stage (an
# order's saga, a payment re-check, a kernel), and a third worker fills those waits (measured: 588 s
# with -n 2, 520 s with -n 3, same tree, same machine).
# The static checks (ruff, mypy, bandit: about 30 s from a fresh clone, mypy without its cache) run
# beside pytest rather than before it: the suite leaves about a third of the two cores idle while its
# tests wait on stages, and the checks fill that (one after another, in the second job slot). Both
# always run to the end; make fails if either fails.
test: $(STAMP) $(CHECKOV_STAMP)
	@$(MAKE) --no-print-directory --keep-going -j 2 pytest static-checks

static-checks: lint typecheck security

pytest: $(STAMP) $(CHECKOV_STAMP)
	$(BIN)/python -m pytest -n 3 --dist loadscope --no-loadscope-reorder $(PYTEST_ARGS)

# B101 (assert), B105/B106 (a literal next to a name such as "token"): name heuristics that ruff's S rules
# already weigh (pyproject.toml); values are searched by tests/unit/test_no_secrets.py. The rest are
# fixed or justified inline with "# nosec <id>" and a reason. See docs/security.md.
security: $(STAMP)
	$(BIN)/bandit -r chalicelib app.py infra localstage scripts -q --skip B101,B105,B106

# The full fuzz run of issue 7: at least 1,000 generated requests against a fresh local stage.
fuzz: $(STAMP)
	FUZZ_REQUESTS=$${FUZZ_REQUESTS:-1200} $(BIN)/python -m pytest tests/e2e/test_security_fuzz.py -s $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/python -m pytest -m unit $(PYTEST_ARGS)

integration: $(STAMP) $(CHECKOV_STAMP)
	$(BIN)/python -m pytest -m integration $(PYTEST_ARGS)

e2e: $(STAMP)
	$(BIN)/python -m pytest -m e2e $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# The stage's settings: the environment, or what make deploy wrote to $(BUILD)/<stage>/stage-outputs.json.
admin: $(STAMP)
	$(BIN)/python -m scripts.create_admin --stage $(STAGE) --email "$(EMAIL)" $(if $(PASSWORD),--password "$(PASSWORD)") \
		$(if $(wildcard $(BUILD)/$(STAGE)/stage-outputs.json),--outputs $(BUILD)/$(STAGE)/stage-outputs.json)

lock:
	rm -rf /tmp/ecommerce-lock && $(PYTHON) -m venv /tmp/ecommerce-lock
	/tmp/ecommerce-lock/bin/pip install --quiet -r requirements-dev.in
	{ echo "# Generated by 'make lock' from requirements-dev.in: every package pinned, so a fresh machine builds what CI tested."; \
	  echo "-r requirements.txt"; /tmp/ecommerce-lock/bin/pip freeze | grep -viE '^pyjwt=='; } > requirements-dev.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# AWS_DEFAULT_REGION: chalice package needs one, even offline. See docs/deploy.md.
package: $(STAMP)
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(BIN)/python -m infra.package --stage $(STAGE) --build $(BUILD) $(SETTINGS_ARG)

deploy: $(STAMP)
	$(BIN)/python -m scripts.deploy resources --stage $(STAGE) $(SETTINGS_ARG) $(foreach p,$(PARAMETERS),--parameter $(p))
	$(BIN)/python -m scripts.deploy prepare --stage $(STAGE) $(SETTINGS_ARG) --project $(BUILD)/$(STAGE)/deploy
	cd $(BUILD)/$(STAGE)/deploy && $(CURDIR)/$(BIN)/chalice deploy --stage $(STAGE)
	$(BIN)/python -m scripts.deploy finish --stage $(STAGE) $(SETTINGS_ARG) --project $(BUILD)/$(STAGE)/deploy
	$(BIN)/python -m scripts.deploy outputs --stage $(STAGE) --project $(BUILD)/$(STAGE)/deploy > $(BUILD)/$(STAGE)/stage-outputs.json.tmp
	mv $(BUILD)/$(STAGE)/stage-outputs.json.tmp $(BUILD)/$(STAGE)/stage-outputs.json
	@echo "deployed $(STAGE): $(BUILD)/$(STAGE)/stage-outputs.json (api_url, and the functions' environment)"

# Removes what make deploy created, in reverse: chalice's functions, roles and API, then the resource stack.
destroy: $(STAMP)
	$(BIN)/python -m scripts.deploy unmap --stage $(STAGE) $(SETTINGS_ARG)
	test ! -f $(BUILD)/$(STAGE)/deploy/.chalice/deployed/$(STAGE).json || \
		(cd $(BUILD)/$(STAGE)/deploy && $(CURDIR)/$(BIN)/chalice delete --stage $(STAGE))
	$(BIN)/python -m scripts.deploy destroy --stage $(STAGE) $(SETTINGS_ARG)
	rm -f $(BUILD)/$(STAGE)/stage-outputs.json

# Without API_URL it starts a local stage on free ports for the run. Against a deployed stage:
# make runbooks API_URL=https://... STAGE=dev RUNBOOK_ARGS=--full (AWS credentials from your usual profile)
runbooks: $(STAMP)
	$(BIN)/python -m runbooks.execute --stage $(STAGE) --api-url "$(API_URL)" --aws-endpoint-url "$(AWS_ENDPOINT)" $(RUNBOOK_ARGS)

# The notebooks' parameters default to make run's stage (127.0.0.1:8000 and :4566): start it first.
# jupytext (pinned) keeps each notebooks/<name>.py in step when the .ipynb is saved; loopback only.
# Jupyter refuses root unless told: these machines (and containers) run as root, and it listens on loopback.
lab: $(STAMP)
	cd notebooks && PYTHONPATH=$(CURDIR) $(CURDIR)/$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 \
		--ServerApp.port=$(LAB_PORT) $(if $(filter 0,$(shell id -u)),--ServerApp.allow_root=True) $(LAB_ARGS)
