# The two commands of the README: `make dev` (everything locally, embedded defaults) and `make test`.
.PHONY: dev test test-unit test-integration lint crd controlplane helm kind-e2e

UV ?= uv

dev:
	$(UV) run mediagen dev

test:
	$(UV) run pytest -q

test-unit:
	$(UV) run pytest -q tests/unit

test-integration:
	$(UV) run pytest -q tests/integration

lint:
	$(UV) run ruff check operator tests
	$(UV) run ruff format --check operator tests
	$(UV) run mypy

crd:
	$(UV) run mediagen crd --write crds

controlplane:
	$(UV) run mediagen controlplane

# Build the pinned helm (Go module proxy) into ~/.cache/mediagen unless it is there; prints its path.
helm:
	hack/build-helm.sh

# kind cluster + image + chart in mock mode + an example to Succeeded (needs Docker, kind, kubectl).
kind-e2e:
	hack/kind-e2e.sh

# Benchmarks (README "Benchmarks"): the real control plane, fake Replicate and S3, the operator as its own process;
# about 15 minutes on two cores. Prints a table and writes bench/results.json. `--scale smoke` takes a minute.
.PHONY: bench
bench:
	$(UV) run python -m mediagen.bench --scale full

# Reliability and security experiments on loopback (operator kills, control-plane restarts, outages, failover,
# fuzzing, secret hygiene, abuse limits); writes bench/reliability.json. About 12 minutes on two cores.
.PHONY: chaos
chaos:
	$(UV) run python -m mediagen.chaos --scale full
