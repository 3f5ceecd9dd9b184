# hvmon developer entry points.
#
#   make run    set up, then tour the CLI on the embedded test driver
#   make test   set up, then ruff + import contracts + pytest (what CI runs)
#   make lint   ruff + import contracts only
#   make bench  set up, then the benchmarks (next to libvirt's test driver)
#   make venv   the shared set-up step: .venv, Python deps, Debian packages
#
# Set-up is idempotent: the venv is created only when missing, `pip install`
# runs only when pyproject.toml is newer than the stamp in .venv, and Debian
# packages are installed only when missing and only when running as root.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.hvmon-installed

# Debian packages the tests need (future issues add qemu-system-x86, dnsmasq ...).
APT_PACKAGES ?=
# Debian packages the benchmarks use when present (virsh, for libvirt's test driver).
BENCH_APT_PACKAGES ?= libvirt-clients

PYTEST_ARGS ?=
BENCH_ARGS ?=

# $(call apt_install,PACKAGES,STRICT): install the missing ones when root.
# STRICT=1 fails the build when an install fails; otherwise warn and go on.
define apt_install
	@missing=""; \
	if command -v dpkg-query >/dev/null 2>&1; then \
	  for pkg in $(1); do \
	    dpkg-query -W -f='$${Status}' "$$pkg" 2>/dev/null | grep -q 'ok installed' \
	      || missing="$$missing $$pkg"; \
	  done; \
	elif [ -n "$(strip $(1))" ]; then \
	  echo "note: no dpkg here; make sure these are installed:$(1)"; \
	fi; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	           apt-get install -y -qq --no-install-recommends $$missing; }; then \
	      if [ "$(2)" = 1 ]; then echo "error: apt-get install failed:$$missing" >&2; exit 1; fi; \
	      echo "warning: could not install:$$missing"; \
	    fi; \
	  else \
	    echo "warning: missing Debian packages:$$missing (run as root or install them)"; \
	    if [ "$(2)" = 1 ]; then exit 1; fi; \
	  fi; \
	fi
endef

.PHONY: help venv apt-packages run test lint bench clean

help:
	@sed -n '3,8p' Makefile | sed 's/^# \{0,1\}//'

venv: apt-packages $(STAMP)

apt-packages:
	$(call apt_install,$(APT_PACKAGES),1)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

run: venv
	@for cmd in "nodeinfo" "list --all" "pool-list --all" "net-list --all" \
	            "domstats --raw test"; do \
	  echo "\$$ hvmon $$cmd"; \
	  $(BIN)/hvmon $$cmd || exit 1; \
	done
	@echo "(make run will start the hvmond daemon once issue 3 lands)"

lint: venv
	$(BIN)/ruff check hvmon tests benchmarks
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

bench: venv
	$(call apt_install,$(if $(shell command -v virsh),,$(BENCH_APT_PACKAGES)),0)
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache benchmarks/out
