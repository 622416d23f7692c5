# The two commands of the README: `make dev` (everything locally, embedded defaults) and `make test`.
.PHONY: uv dev test test-unit test-integration lint crd controlplane helm checks kind-e2e e2e bench chaos

# uv from PATH, or the pinned uv installed on first use into ~/.cache/mediagen (hack/uv.sh): both commands work
# on a machine with nothing but python3, Go and make.
UV ?= $(CURDIR)/hack/uv.sh
# Extra arguments: `make dev ARGS=--help`, `make test ARGS="-k gateway tests/unit"`.
ARGS ?=

dev:
	$(UV) run python -m mediagen_dev dev $(ARGS)

test:
	$(UV) run pytest -q $(ARGS)

# Print the path of the uv the other targets use (installing the pinned one if there is none).
uv:
	@$(UV) --which

test-unit:
	$(UV) run pytest -q tests/unit

test-integration:
	$(UV) run pytest -q tests/integration

# ruff, the formatter, mypy --strict and the import contracts in pyproject.toml ([tool.importlinter]).
lint:
	$(UV) run ruff check operator tests
	$(UV) run ruff format --check operator tests
	$(UV) run mypy
	$(UV) run lint-imports

# Every committed copy of the CRD and the admission policy (crds/, the chart, the kustomize base).
crd:
	$(UV) run python -m mediagen_dev crd

controlplane:
	$(UV) run python -m mediagen_dev controlplane

# Build the pinned helm (Go module proxy) into ~/.cache/mediagen unless it is there; prints its path.
helm:
	hack/build-helm.sh

# Build kstatus, Argo CD's health code (argocd-health) and promtool, the real tools the tests judge GitOps health
# and alerts with, in one go build (hack/tools/checks) into ~/.cache/mediagen unless there; prints their folder.
checks:
	hack/build-checks.sh

# The end-to-end scenarios (tests/e2e) on kind: images built and loaded with Docker (needs Docker, kind, kubectl).
kind-e2e:
	UV=$(UV) hack/kind-e2e.sh

# The same scenarios on a one-node cluster of this machine (kubelet, containerd, CNI bridge; no Docker, no registry;
# needs root). Builds what it needs into ~/.cache/mediagen, tears everything down and checks the machine is as it
# was. E2E_SCALE=full: 2,000 generations in flight, figures into bench/results.json ("e2e").
E2E_SCALE ?= smoke
e2e:
	UV=$(UV) hack/e2e.sh --scale $(E2E_SCALE) $(if $(ARGS),-- $(ARGS))

# Benchmarks (README "Benchmarks"): the real control plane, fake Replicate and S3, the operator as its own process;
# about 35 minutes on two cores. Prints a table and writes bench/results.json. `--scale smoke` takes a minute.
bench:
	$(UV) run python -m mediagen_dev.bench --scale full

# Reliability and security experiments on loopback (operator kills, control-plane restarts, outages, failover,
# fuzzing, secret hygiene, abuse limits); writes bench/reliability.json. About 12 minutes on two cores.
chaos:
	$(UV) run python -m mediagen_dev.chaos --scale full
