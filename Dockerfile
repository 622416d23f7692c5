# syntax=docker/dockerfile:1
# One image for the operator (`mediagen operator`, the default) and the gateway (`mediagen gateway`).
# Runs as a non-root user with a read-only root filesystem; only /tmp needs to be writable.

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
# Then the package itself, installed (not linked) into the environment.
COPY operator ./operator
RUN uv sync --frozen --no-dev --no-editable

# --- runtime: the environment and nothing else ----------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="mediagen" \
      org.opencontainers.image.description="AI media generation as a Kubernetes resource: operator and HTTP gateway" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --system --gid 65532 mediagen \
 && useradd --system --uid 65532 --gid 65532 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin mediagen
COPY --from=build /opt/venv /opt/venv
USER 65532:65532
WORKDIR /tmp
# 8080: the operator's liveness endpoint; 8000: the gateway.
EXPOSE 8080 8000
ENTRYPOINT ["mediagen"]
CMD ["operator", "--liveness=http://0.0.0.0:8080/healthz"]
