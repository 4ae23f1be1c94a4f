# freight: `make install` sets up a fresh Debian machine (as root); `make test` runs the suite.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := git busybox-static runc tini libseccomp2 mmdebstrap iproute2 procps python3-venv nftables skopeo umoci docker-registry apache2-utils chromium-headless-shell
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install apt venv demo test test-unit test-integration test-slow fuzz lint bench clean

install: apt venv
	$(PY) -m compileall -q src >/dev/null
	@# The CLI's launcher skips site-packages scanning (-S): it needs only the stdlib and src/.
	printf '#!%s -S\nimport sys\nsys.path.insert(0, "%s")\nfrom freight.cli.main import run\nrun()\n' \
		"$(CURDIR)/$(VENV)/bin/python" "$(CURDIR)/src" > /usr/local/bin/freight
	chmod 755 /usr/local/bin/freight
	ln -sf $(CURDIR)/$(VENV)/bin/freightd /usr/local/bin/freightd
	ln -sf $(CURDIR)/$(VENV)/bin/freight-shell /usr/local/bin/freight-shell

apt:
	@if ! dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); \
	fi

venv:
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'

# Install, start the daemon, make busybox from the host, run a container, list containers.
demo: install
	freight daemon start
	freight image bootstrap busybox
	freight run --rm busybox echo hello from a freight container
	freight run --name demo-$$RANDOM busybox sh -c 'echo "I am $$(hostname), pid $$$$"'
	freight ps -a

lint:
	$(PY) -m ruff check src tests bench
	$(PY) -m ruff format --check src tests bench
	$(VENV)/bin/lint-imports

test: lint
	$(PY) -m pytest -q -x --durations=15 < /dev/null

test-unit:
	$(PY) -m pytest -q tests/unit

test-slow:
	$(PY) -m pytest -q -m slow

# Fresh random inputs for the fuzz tests (make test replays a fixed set); failures
# are saved, shrunk, in tests/fuzz-corpus/ for every later run to replay.
fuzz:
	FREIGHT_FUZZ=explore $(PY) -m pytest -q tests/unit/fuzz

bench:
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info
