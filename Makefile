# One entry point: build, lint, test, bench, demo. Every target installs what
# it needs first (idempotent), so a fresh machine of this kind needs only
# `make demo` or `make test`.

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
APT_PACKAGES := clang-19 llvm-19 libbpf-dev bpftool clang-format-19 gcc libc6-dev make \
	containerd runc busybox-static strace bpftrace linux-perf python3-venv \
	debootstrap umoci
STAMP := .make

.PHONY: setup apt venv build demo test test-rust test-py lint fmt bench bench-quick wheel wheel-check clean \
	sdist sdist-check image \
	proto proto-check

setup: $(STAMP)/apt $(STAMP)/venv build

$(STAMP)/apt:
	@mkdir -p $(STAMP)
	@if [ "$$(id -u)" != 0 ]; then echo "make setup: run as root (apt-get, eBPF)"; exit 1; fi
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@touch $@

$(STAMP)/venv: pyproject.toml
	@mkdir -p $(STAMP)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "maturin>=1.5,<2" pytest pytest-asyncio hypothesis numpy pyyaml grpcio \
		protobuf grpcio-tools mypy-protobuf pydantic durationpy jsonschema kubernetes kmock ruff mypy \
		types-PyYAML types-grpcio types-protobuf matplotlib \
		grpcio-health-checking grpcio-reflection types-grpcio-health-checking types-grpcio-reflection prometheus-client rich kubernetes-validate auditwheel
	@touch $@

build: $(STAMP)/apt $(STAMP)/venv
	$(VENV)/bin/maturin develop --release -q

# `syshub trace`: events on stderr (strace-style) apart from the command's own
# stdout, then the summary (matched = printed + dropped + sampled out); then a
# command's execve and exit_group as JSON lines (the one event document) on stdout.
demo: setup
	$(VENV)/bin/syshub trace -s openat,execve,connect,exit_group -- \
		sh -c 'cat /etc/hostname | tr a-z A-Z; ls /nonexistent 2>/dev/null; exit 0'
	$(VENV)/bin/syshub trace -s execve,exit_group --format json -o - -- \
		sh -c 'cat /etc/hostname >/dev/null; exit 0'

test: setup test-rust test-py

test-rust:
	cargo test --release -p syshub-bpf

test-py:
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check python tests benches
	$(VENV)/bin/ruff format --check python tests benches
	$(VENV)/bin/mypy
	$(PY) -m mypy.stubtest syshub._native --allowlist rust/stubtest_allowlist.txt
	$(MAKE) --no-print-directory proto-check
	cargo fmt --all -- --check
	cargo clippy --release --all-targets -- -D warnings
	clang-format-19 --dry-run -Werror bpf-rs/bpf/*.c bpf-rs/bpf/*.h benches/ceiling/*.c benches/ceiling/*.h

fmt:
	$(VENV)/bin/ruff format python tests benches
	$(VENV)/bin/ruff check --fix python tests benches
	cargo fmt --all
	clang-format-19 -i bpf-rs/bpf/*.c bpf-rs/bpf/*.h benches/ceiling/*.c benches/ceiling/*.h

bench: setup
	$(PY) -m benches

bench-quick: setup
	$(PY) -m benches --quick

# The wheel carries a manylinux tag ([tool.maturin] compatibility in pyproject.toml);
# wheel-check confirms it with auditwheel. The sdist builds the same wheel (sdist-check).
WHEEL_TAG := $(shell sed -n 's/^compatibility = "\(.*\)"/\1/p' pyproject.toml)
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)

wheel: $(STAMP)/apt $(STAMP)/venv
	rm -f target/wheels/syshub-*.whl
	$(VENV)/bin/maturin build --release

sdist: $(STAMP)/venv
	rm -f target/sdist/syshub-*.tar.gz
	$(VENV)/bin/maturin sdist -o target/sdist

# The agent's OCI image (syshub:$(VERSION)) from a debootstrapped Debian root filesystem and
# the wheel, assembled with umoci; no image registry involved (deploy/image/build.sh).
image: wheel
	@for t in debootstrap umoci; do command -v $$t >/dev/null || { \
		echo "make image: needs $$t (apt-get install debootstrap umoci)"; exit 1; }; done
	PYTHON=$(PY) deploy/image/build.sh $(VERSION) $$(ls target/wheels/syshub-*.whl) target/image

# Build a wheel from the sdist alone (pip, as a user would; PEP 517 builds need the tag passed)
# and compare its name (tag) and files to `make wheel`'s.
sdist-check: sdist wheel
	rm -rf target/sdist-build && mkdir -p target/sdist-build
	MATURIN_PEP517_ARGS="--compatibility $(WHEEL_TAG)" \
		$(PIP) wheel -q --no-deps -w target/sdist-build $$(ls target/sdist/syshub-*.tar.gz)
	test "$$(cd target/sdist-build && ls syshub-*.whl)" = "$$(cd target/wheels && ls syshub-*.whl)"
	$(PY) -c "import sys, zipfile; n = lambda p: sorted(i.filename for i in zipfile.ZipFile(p).infolist()); \
		a, b = sys.argv[1:3]; print(a, b); sys.exit(0 if n(a) == n(b) else 'sdist wheel differs: ' + str(set(n(a)) ^ set(n(b))))" \
		$$(ls target/sdist-build/syshub-*.whl) $$(ls target/wheels/syshub-*.whl)
	@echo "sdist-check: the sdist builds the same wheel (same files, same tag)"

clean:
	rm -rf $(STAMP) target dist

# The wheel embeds the probe: install it into a fresh virtualenv and trace
# with a PATH that holds no clang (only the traced command).
wheel-check: wheel
	$(VENV)/bin/auditwheel show $$(ls target/wheels/syshub-*.whl) | tee target/wheel-audit.txt
	grep -q "$(WHEEL_TAG)_x86_64" target/wheel-audit.txt
	case "$$(ls target/wheels/syshub-*.whl)" in *$(WHEEL_TAG)_x86_64.whl) ;; \
		*) echo "wheel-check: the wheel is not tagged $(WHEEL_TAG)"; exit 1;; esac
	rm -rf .wheel-venv && python3 -m venv .wheel-venv
	.wheel-venv/bin/pip install -q $$(ls -t target/wheels/syshub-*.whl | head -1)
	mkdir -p .wheel-venv/nobin && ln -sf /usr/bin/cat .wheel-venv/nobin/cat
	cd / && env PATH=$(CURDIR)/.wheel-venv/nobin $(CURDIR)/.wheel-venv/bin/syshub trace \
		-s openat -o - -- cat /etc/hostname | grep -q 'openat(AT_FDCWD, "/etc/hostname", O_RDONLY) = 3'
	@echo "wheel-check: the installed wheel traced with no clang on PATH"

# The CRI subset (proto/cri) and syshub's own API (proto/syshub/v1) -> checked-in Python
# code under the package (the wheel ships it): proto/cri into python/syshub/topology/cri,
# proto/syshub/v1/*.proto into python/syshub/v1 (imports are rooted at proto/, so the
# generated agent_pb2 imports syshub.v1.event_pb2). `proto-check` regenerates into a
# scratch directory and fails on any difference from what is checked in.
CRI_PROTOS := runtime/v1/api.proto
CRI_GEN := python/syshub/topology/cri
CRI_GENERATED := $(foreach p,$(CRI_PROTOS),$(patsubst %.proto,%_pb2.py,$(p)) $(patsubst %.proto,%_pb2.pyi,$(p)))
SYSHUB_PROTOS := syshub/v1/event.proto syshub/v1/agent.proto
SYSHUB_GEN := python
SYSHUB_GENERATED := $(foreach p,$(SYSHUB_PROTOS),$(patsubst %.proto,%_pb2.py,$(p)) $(patsubst %.proto,%_pb2.pyi,$(p)))

define gen_cri
	$(PY) -m grpc_tools.protoc -I proto/cri --python_out=$(1) --mypy_out=$(1) \
		--plugin=protoc-gen-mypy=$(VENV)/bin/protoc-gen-mypy $(addprefix proto/cri/,$(CRI_PROTOS))
endef

define gen_syshub
	$(PY) -m grpc_tools.protoc -I proto --python_out=$(1) --mypy_out=$(1) \
		--plugin=protoc-gen-mypy=$(VENV)/bin/protoc-gen-mypy $(addprefix proto/,$(SYSHUB_PROTOS))
endef

proto:
	$(call gen_cri,$(CRI_GEN))
	$(call gen_syshub,$(SYSHUB_GEN))

proto-check:
	@rm -rf $(STAMP)/proto-check && mkdir -p $(STAMP)/proto-check/cri $(STAMP)/proto-check/syshub
	$(call gen_cri,$(STAMP)/proto-check/cri)
	$(call gen_syshub,$(STAMP)/proto-check/syshub)
	@for f in $(CRI_GENERATED); do \
		diff -q $(STAMP)/proto-check/cri/$$f $(CRI_GEN)/$$f >/dev/null || \
		{ echo "proto-check: $(CRI_GEN)/$$f differs from proto/cri (run make proto)"; exit 1; }; \
	done
	@for f in $(SYSHUB_GENERATED); do \
		diff -q $(STAMP)/proto-check/syshub/$$f $(SYSHUB_GEN)/$$f >/dev/null || \
		{ echo "proto-check: $(SYSHUB_GEN)/$$f differs from proto/ (run make proto)"; exit 1; }; \
	done
	@echo "proto-check: generated CRI and syshub API code is up to date"
