# The front door. `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
# The platform environment is installed on first use and whenever its lock changes.
PLATFORM := $(VENV)/.installed

# Projects are the top-level folders that are Python packages; PROJECT=name narrows to one.
ALL_PROJECTS := $(patsubst %/pyproject.toml,%,$(wildcard */pyproject.toml))
PROJECTS := $(if $(PROJECT),$(PROJECT),$(ALL_PROJECTS))
# Projects that run as a container image.
IMAGE_PROJECTS := $(filter $(patsubst %/Dockerfile,%,$(wildcard */Dockerfile)),$(PROJECTS))

export AIRFLOW_HOME ?= $(CURDIR)/.airflow
ifndef VERSION
# Computed once, on first use: git's answer takes half a second that make run and make shell do not need.
VERSION = $(eval VERSION := $$(shell $(PYTHON) -m platformkit version . 2>/dev/null || echo unversioned))$(VERSION)
endif
ARCHIVE ?= dist/platform-airflow-dags-$(VERSION).tar.gz

# Images. This machine's defaults come first: `make docker-engine` writes local.mk (git-ignored)
# with the local base image and CA bundle, so later calls need no arguments. A variable given on
# the command line or in the environment wins over both.
-include local.mk
# Pinned, never :latest. With a venv-packed runtime (no conda in the builder) BASE_IMAGE must be
# the builder's base, so the interpreter the runtime links to exists in the image.
BASE_IMAGE ?= docker.io/library/python:3.11.11-slim-bookworm
BUILDER_BASE_IMAGE ?= docker.io/condaforge/miniforge3:25.3.0-1
BUILDER_IMAGE := localhost/platform-runtime-builder
# Images are named <IMAGE_REPOSITORY>/<project>:<version>; PUSH=true pushes them there.
IMAGE_REPOSITORY ?= localhost
# A PEM file of extra CA certificates (a corporate proxy's) for builds inside containers.
EXTRA_CA_BUNDLE ?=
DOCKER ?= docker
# The tests build images and runtimes the way make does.
export BASE_IMAGE BUILDER_BASE_IMAGE EXTRA_CA_BUNDLE

.PHONY: help install lock new-project lint test test-projects test-platform venv builder-image image image-projects archive \
        deploy rollback status deploy-local-build airflow backfill demo shell run spark-history docker-engine version bench clean

help: ## list the targets
	@grep -hE '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[1m%-20s\033[0m %s\n", $$1, $$2}'

$(PLATFORM): requirements/platform.lock $(wildcard pyproject.toml)
	@echo "== installing the platform environment into $(VENV) (Airflow, providers, test tools, platformkit)"
	test -x $(UV) || { $(PYTHON) -m venv $(VENV) && $(VPY) -m pip install --quiet "$$(grep '^uv==' requirements/platform.lock)"; }
	$(UV) pip sync --quiet --compile-bytecode -p $(VPY) requirements/platform.lock
	@# The platform's own package, editable: every Airflow process imports its DAG bundle class
	@# from this checkout, before any release exists (sync above removes what the lock lacks).
	if [ -f pyproject.toml ]; then $(UV) pip install --quiet -p $(VPY) --no-deps -e .; fi
	touch $@

install: $(PLATFORM) ## install the platform environment (.venv) from requirements/platform.lock, and platformkit

lock: $(PLATFORM) ## re-resolve requirements/platform.lock and every project's locks [PROJECT=name: that project's only]
	$(if $(PROJECT),,cd requirements && ../$(UV) pip compile --quiet --python-version 3.11 --python-platform x86_64-unknown-linux-gnu platform.in -o platform.lock)
	@for p in $(PROJECTS); do \
	  echo "== locking $$p"; \
	  (cd $$p && ../$(UV) pip compile --quiet --python-version 3.11 pyproject.toml -o requirements.lock && \
	   ../$(UV) pip compile --quiet --python-version 3.11 pyproject.toml --extra test -o requirements-dev.lock) || exit 1; \
	done

new-project: $(PLATFORM) ## create a project and its DAG from a template, with its locks: NAME=x KIND=python|spark|container
	@test -n "$(NAME)" -a -n "$(KIND)" || { echo "make new-project NAME=<name> KIND=python|spark|container" >&2; exit 2; }
	@$(VPY) -m platformkit new-project $(NAME) --kind $(KIND)
	@$(MAKE) --no-print-directory lock PROJECT=$(NAME) || { echo "new-project: error: $(NAME)/ has no locks yet; run \`make lock PROJECT=$(NAME)\` once the package index answers" >&2; exit 1; }
	@echo "== $(NAME) is ready: make test-projects PROJECT=$(NAME); make $(if $(filter container,$(KIND)),image,venv) PROJECT=$(NAME); make run PROJECT=$(NAME) ($(NAME)/README.md)"

# A project's own test environment: its locked dependencies, its test extra, the project editable.
%/.venv/.installed: %/requirements-dev.lock %/pyproject.toml | $(PLATFORM)
	@echo "== installing the test environment of $*"
	$(UV) venv --quiet --allow-existing -p $(PYTHON) $*/.venv
	$(UV) pip install --quiet -p $*/.venv/bin/python -r $*/requirements-dev.lock -e $*
	touch $@

# JUNIT_DIR=dir: each suite also writes a JUnit report, dir/<suite>.xml (CI shows them).
junit = $(if $(JUNIT_DIR),--junitxml=$(abspath $(JUNIT_DIR))/$(1).xml)

lint: $(PLATFORM) ## lint every Python file of the repository with ruff (ruff.toml)
	$(VENV)/bin/ruff check .

test: lint test-projects test-platform ## run every test: lint, each project's suite in its own env, then the platform's

test-projects: $(foreach p,$(PROJECTS),$(p)/.venv/.installed) ## run each project's tests [PROJECT=name]
	@for p in $(PROJECTS); do \
	  echo "== testing $$p"; \
	  (cd $$p && .venv/bin/python -m pytest tests $(PYTEST_ARGS) $(call junit,$$p)) || exit 1; \
	done

test-platform: $(PLATFORM) ## run the platform tests (DAG integrity, build, archive, deploy, end to end)
	$(VPY) -m pytest tests $(PYTEST_ARGS) $(call junit,platform)

builder-image: ## build the runtime builder image [BUILDER_BASE_IMAGE=] [EXTRA_CA_BUNDLE=]
	@$(DOCKER) image inspect $(BUILDER_BASE_IMAGE) >/dev/null 2>&1 || $(DOCKER) pull --quiet $(BUILDER_BASE_IMAGE) >/dev/null 2>&1 || \
	  { echo "builder base image $(BUILDER_BASE_IMAGE) is not on this Docker engine and cannot be pulled: run \`make docker-engine\` (it builds localhost/platform-base:bookworm and makes it the default) or pass BUILDER_BASE_IMAGE=<an image you can pull>" >&2; exit 1; }
	@rm -f conda/.extra-ca/*.crt
	@if [ -n "$(EXTRA_CA_BUNDLE)" ]; then cp "$(EXTRA_CA_BUNDLE)" conda/.extra-ca/extra.crt; fi
	$(DOCKER) build --quiet --build-arg BASE_IMAGE=$(BUILDER_BASE_IMAGE) -t $(BUILDER_IMAGE) conda >/dev/null

venv: $(PLATFORM) $(if $(filter true,$(SKIP_DOCKER)),,builder-image) ## build each project's runtime venv.tar.gz [PROJECT=] [SKIP_DOCKER=true] [FORCE=true]
	@for p in $(PROJECTS); do \
	  if [ "$(SKIP_DOCKER)" = true ]; then \
	    $(VPY) -m platformkit build-runtime $$p $(if $(filter true,$(FORCE)),--force) || exit 1; \
	  else \
	    $(DOCKER) run --rm --platform linux/amd64 -u $$(id -u):$$(id -g) -e HOME=/tmp \
	      -v $(CURDIR):/src $(BUILDER_IMAGE) \
	      python3 -m platformkit build-runtime $$p $(if $(filter true,$(FORCE)),--force) || exit 1; \
	  fi; \
	done

image: ## build each container project's image from its runtime [PROJECT=] [IMAGE_REPOSITORY=host[:port]/path] [PUSH=true]
	@test -n "$(IMAGE_PROJECTS)" || { echo "no project with a Dockerfile among: $(PROJECTS)"; exit 1; }
	@# Their runtimes first (nothing to do when up to date): an image is made of one.
	@$(MAKE) --no-print-directory venv PROJECT="$(IMAGE_PROJECTS)"
	@for p in $(IMAGE_PROJECTS); do \
	  $(PYTHON) -m platformkit image $$p --repository $(IMAGE_REPOSITORY) --version $(VERSION) \
	    --base-image $(BASE_IMAGE) $(if $(filter true,$(PUSH)),--push) || exit 1; \
	done

image-projects: ## list the projects that run as a container image (they have a Dockerfile)
	@echo $(IMAGE_PROJECTS)

archive: $(PLATFORM) ## write dist/platform-airflow-dags-<version>.tar.gz and its .sha256, pinning the images [IMAGE_REPOSITORY=]
	$(VPY) -m platformkit archive --version $(VERSION) --dist dist --image-repository $(IMAGE_REPOSITORY)

# deploy, rollback and status are standard library only: they run with the host's python3, where
# there is no platform environment (the CI deploy job, an Airflow host); `python3 -m` finds
# platformkit in this folder.
deploy: ## deploy a release into $AIRFLOW_HOME [ARCHIVE=path-or-URL] [VERSION=]
	$(PYTHON) -m platformkit deploy $(ARCHIVE) --airflow-home $(AIRFLOW_HOME)

rollback: ## switch $AIRFLOW_HOME back to the previous release
	$(PYTHON) -m platformkit rollback --airflow-home $(AIRFLOW_HOME)

status: ## show the live release and the ones kept
	$(PYTHON) -m platformkit status --airflow-home $(AIRFLOW_HOME)

# TEST=false leaves out the test step (tests/test_deploy_local_build.py runs this target from
# inside the test suite, which must not run itself again).
deploy-local-build: $(if $(filter false,$(TEST)),,test) venv $(if $(IMAGE_PROJECTS),image) archive deploy ## test, build, archive and deploy this checkout into $AIRFLOW_HOME [TEST=false]
	@echo "== deployed $(VERSION) into $(AIRFLOW_HOME) (Airflow's bundle 'releases' parses the live release: local.env)"
	@$(PYTHON) -m platformkit status --airflow-home $(AIRFLOW_HOME)

airflow: $(PLATFORM) ## run Airflow (standalone, UI on :8080) on the deployed release
	@test -d $(AIRFLOW_HOME)/current/dags || { echo "nothing deployed in $(AIRFLOW_HOME): run make deploy-local-build"; exit 1; }
	@echo "== Airflow on http://localhost:$${AIRFLOW__API__PORT:-8080} ; log in as 'admin' with the password in $(AIRFLOW_HOME)/simple_auth_manager_passwords.json.generated (standalone also prints it)"
	@# local.env is KEY=VALUE without quoting (values hold spaces and JSON), so it is exported line by line.
	while IFS= read -r line; do case "$$line" in ''|'#'*) ;; *) export "$$line";; esac; done < local.env; \
	  PATH=$(CURDIR)/$(VENV)/bin:$$PATH AIRFLOW__CORE__DAGS_FOLDER=$(AIRFLOW_HOME)/current/dags exec airflow standalone

# make shell / make run of a container project: PASS_ENV="NAME ..." gives the container these variables
# of this environment (by name: secrets stay out unless named), NETWORK= its network, IMAGE= another image.
CONTAINER_OPTIONS = $(foreach name,$(PASS_ENV),--pass-env $(name)) $(if $(NETWORK),--network $(NETWORK)) \
                    $(if $(IMAGE),--image $(IMAGE))

shell: $(PLATFORM) ## a shell in PROJECT's runtime or container, as its DAG task has it; runs stdin's commands when not a terminal [PASS_ENV=]
	@test -n "$(PROJECT)" || { echo "make shell PROJECT=<project>" >&2; exit 1; }
	@$(VPY) -m platformkit shell $(CONTAINER_OPTIONS) $(PROJECT)

run: $(PLATFORM) ## run PROJECT's stages here without Airflow, skipping those up to date [STAGE=s] [VALUES="name=value ..."] [ARGS="..."]
	@test -n "$(PROJECT)" || { echo "make run PROJECT=<project> [STAGE=s] [VALUES=...] [ARGS=...]" >&2; exit 1; }
	@$(VPY) -m platformkit run $(if $(STAGE),--stage $(STAGE)) $(foreach value,$(VALUES),--set $(value)) \
	  $(CONTAINER_OPTIONS) $(PROJECT) $(ARGS)

demo: $(PLATFORM) ## build, deploy into $AIRFLOW_HOME and run both pipelines for one date through Airflow [DATE=YYYY-MM-DD]
	$(VPY) ops/demo.py $(if $(DATE),--date $(DATE))

backfill: $(PLATFORM) ## backfill a DAG through the REST API of a running Airflow: DAG=id FROM=YYYY-MM-DD TO=YYYY-MM-DD
	@test -n "$(DAG)" -a -n "$(FROM)" -a -n "$(TO)" || { echo "usage: make backfill DAG=image_matching FROM=2026-01-01 TO=2026-03-31"; exit 2; }
	$(VPY) ops/backfill.py --dag $(DAG) --from $(FROM) --to $(TO) --wait

# image-matching writes Spark's event logs beside its outputs unless conf/airflow.toml names a place.
SPARK_EVENTS ?= $(AIRFLOW_HOME)/data/image-matching/output/_spark-events
SPARK_HISTORY_PORT ?= 18080
# Loopback unless asked: the History Server has no authentication (Spark's UI binds SPARK_LOCAL_IP).
SPARK_HISTORY_HOST ?= 127.0.0.1
spark-history: $(PLATFORM) ## Spark History Server on image-matching's event logs, on 127.0.0.1:18080 [SPARK_EVENTS=uri] [SPARK_HISTORY_PORT=] [SPARK_HISTORY_HOST=]
	@echo "== Spark History Server on http://$(SPARK_HISTORY_HOST):$(SPARK_HISTORY_PORT), reading $(SPARK_EVENTS)"
	SPARK_LOCAL_IP=$(SPARK_HISTORY_HOST) SPARK_HOME=$$($(VPY) -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))') \
	  SPARK_HISTORY_OPTS="-Dspark.history.fs.logDirectory=$(SPARK_EVENTS) -Dspark.history.ui.port=$(SPARK_HISTORY_PORT)" \
	  exec $(VENV)/bin/spark-class org.apache.spark.deploy.history.HistoryServer

docker-engine: ## install and start a Docker engine, build the local base image (Debian) and make it the default (local.mk)
	bash .ci/docker-engine.sh local.mk

version: ## print the release version of this checkout (or VERSION=, checked: a name, never a path)
	@$(PYTHON) -m platformkit version --check='$(VERSION)'

bench: $(PLATFORM) ## platform benchmarks: runtime build, sizes, deploy (against the pre-hardening one), DAG parse times (also under the DAG processor), image check, bytecode, the releases bundle
	$(VPY) tests/bench_platform.py
	$(VPY) tests/bench_dag_processor.py
	$(VPY) tests/bench_deploy.py
	$(VPY) tests/bench_images.py
	$(VPY) tests/bench_bundle.py

clean: ## remove build outputs and local environments (keeps $AIRFLOW_HOME)
	rm -rf dist $(VENV) */.venv */venv.tar.gz */venv.manifest.json
