# Two commands on a fresh machine: `make sweep` (the main job) and `make test`.
# Both create .venv/ in the project root and install the project into it first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is installed first and separately so a machine can choose its build:
# here 2.14.1 + torchvision 0.29.1 come from the local disk (a CUDA build that runs on CPU).
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
ARGS ?=

.PHONY: sweep test bench install clean-venv slurm-for-ci

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

sweep: $(VENV)/.installed
	$(BIN)/python -m sweep.run $(ARGS)

test: $(VENV)/.installed slurm-for-ci
	$(BIN)/python -m pytest -q

# In CI (CI=true, as root, Debian): the OS packages the real-scheduler test needs (tests/sweep/test_slurm.py
# starts its own two-host SLURM from them, hosts as network namespaces). Elsewhere that test is skipped unless
# they are installed.
slurm-for-ci:
	@if [ -n "$$CI" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! command -v slurmctld >/dev/null \
	  && ! [ -x /usr/sbin/slurmctld ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge iproute2 util-linux >/dev/null; fi

bench: $(VENV)/.installed
	$(BIN)/python -m trainer.bench $(ARGS)

clean-venv:
	rm -rf $(VENV)
