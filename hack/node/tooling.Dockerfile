# syntax=docker/dockerfile:1
# The tooling image of `make e2e`: the fake Replicate and an S3 server (moto) as pods of the local cluster.
# Test equipment, never shipped: it is built from the same base and lock as the product image (Dockerfile),
# but separately, so the product image carries nothing of it. Build context: the repository root.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
RUN pip install uv==0.13.8
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY operator ./operator
RUN uv sync --frozen --no-dev --no-editable

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="mediagen-tooling" \
      org.opencontainers.image.description="Test equipment for mediagen's end-to-end runs: fake Replicate, S3 server"
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /opt/venv /opt/venv
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["python", "-m", "mediagen.testing.serve"]
