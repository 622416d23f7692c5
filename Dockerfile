# syntax=docker/dockerfile:1
# One image for the operator (`mediagen operator`, the default) and the gateway (`mediagen gateway`): the product
# package `mediagen` and its runtime dependencies, nothing else (the tooling in operator/mediagen_dev, the tests
# and the benchmarks never enter it). Runs as a non-root user with a read-only root filesystem; only /tmp is
# writable. `--target demo` adds moto's S3 server for the chart's self-contained demo store.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: resolve the locked dependencies into a virtual environment --------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
RUN pip install uv==0.13.8
WORKDIR /src
# Dependencies first, in their own layer: it is rebuilt only when the lock file changes.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
# Then the product package itself, installed (not linked) into the environment.
COPY operator/mediagen ./operator/mediagen
RUN uv sync --frozen --no-dev --no-editable

# --- build-demo: the same environment plus the `demo` extra (moto's S3 server) -----------------------------------
FROM build AS build-demo
RUN uv sync --frozen --no-dev --no-editable --extra demo

# --- base: the runtime user and environment, shared by both images -----------------------------------------------
FROM ${PYTHON_IMAGE} AS base
LABEL org.opencontainers.image.title="mediagen" \
      org.opencontainers.image.description="AI media generation as a Kubernetes resource: operator and HTTP gateway" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --system --gid 65532 mediagen \
 && useradd --system --uid 65532 --gid 65532 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin mediagen
WORKDIR /tmp

# --- demo: the product plus moto, for the chart's in-cluster demo store (never needed with R2) -------------------
FROM base AS demo
COPY --from=build-demo /opt/venv /opt/venv
USER 65532:65532
ENTRYPOINT ["mediagen"]

# --- runtime (the default target): the environment and nothing else ----------------------------------------------
FROM base AS runtime
COPY --from=build /opt/venv /opt/venv
USER 65532:65532
# 8080: the operator's liveness endpoint; 8000: the gateway.
EXPOSE 8080 8000
ENTRYPOINT ["mediagen"]
CMD ["operator", "--liveness=http://0.0.0.0:8080/healthz"]
