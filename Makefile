# hvmon developer entry points.
#
#   make run    set up, then run hvmond on the embedded test driver (Ctrl-C stops)
#   make test   set up, then ruff + import contracts + pytest (what CI runs)
#   make lint   ruff + import contracts only
#   make bench  set up, then every benchmark and benchmarks/report.md (QUICK=1: < 2 min)
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
# pywbemcli (pywbemtools) pins Click < 8.2, which import-linter cannot use: its own venv
PYWBEMCLI := $(VENV)/tools/pywbemtools/bin/pywbemcli

# Debian packages the tests need (prometheus + promtool, the Debian libvirt exporter
# the compatibility test compares against, openssl for TLS test certificates).
APT_PACKAGES ?= prometheus prometheus-libvirt-exporter openssl snmp snmpd snmptrapd smitools \
	collectd-core nagios4-core qemu-system-x86 qemu-utils sblim-wbemcli rabbitmq-server \
	busybox-static linux-image-amd64 dnsmasq-base nftables iproute2 udhcpc iputils-ping \
	tgt libiscsi-bin qemu-block-extra open-iscsi lvm2 nfs-common
# Debian packages the benchmarks compare against: virsh and libvirt's test driver, a
# private libvirtd with its QEMU driver and Python binding (bench_qemu.py), the libvirt
# exporter, snmpd and collectd (also test packages: listed so `make bench` stands alone).
BENCH_APT_PACKAGES ?= libvirt-clients libvirt-daemon-system libvirt-daemon-driver-qemu \
	python3-libvirt prometheus-libvirt-exporter snmpd collectd-core

PYTEST_ARGS ?=

# `make run`: hvmond in the foreground on test:///default, every in-tree agent on
# loopback; sockets under $XDG_RUNTIME_DIR/hvmon, or ./.run when it is unset.
RUN_DIR ?= $(if $(XDG_RUNTIME_DIR),$(XDG_RUNTIME_DIR)/hvmon,$(CURDIR)/.run)
STATE_DIR ?= $(CURDIR)/.run/state
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

venv: apt-packages $(STAMP) $(PYWBEMCLI)

apt-packages:
	$(call apt_install,$(APT_PACKAGES),1)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

$(PYWBEMCLI): | $(BIN)/python
	$(PYTHON) -m venv $(VENV)/tools/pywbemtools
	$(VENV)/tools/pywbemtools/bin/python -m pip install --quiet --disable-pip-version-check \
		'pywbemtools>=1.4,<2'

run: venv
	$(BIN)/hvmond --no-config --run-dir "$(RUN_DIR)" --state-dir "$(STATE_DIR)"

lint: venv
	$(BIN)/ruff check hvmon tests benchmarks
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

bench: venv
	$(call apt_install,$(BENCH_APT_PACKAGES),0)
	$(BIN)/python benchmarks/run.py --report benchmarks/report.md $(if $(QUICK),--quick) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache benchmarks/out benchmarks/report.md benchmarks/report-plots
