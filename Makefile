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
