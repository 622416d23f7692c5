# syntax=docker/dockerfile:1
# The tooling image of `make e2e`: the fake Replicate, an S3 server (moto) and an HTTPS webhook relay, run as pods
# of the cluster under test (`python -m mediagen_dev.e2e.serve replicate|s3|webhook-relay`). Test equipment, never
# shipped: the demo image (the product plus moto, the project's Dockerfile `--target demo`) with the tooling package
# operator/mediagen_dev beside it. Build context: operator/.
ARG DEMO_IMAGE=mediagen:demo
FROM ${DEMO_IMAGE}
LABEL org.opencontainers.image.title="mediagen-tooling" \
      org.opencontainers.image.description="Test equipment for mediagen's end-to-end runs: fake Replicate, S3, webhook relay"
COPY mediagen_dev /opt/tooling/mediagen_dev
ENV PYTHONPATH=/opt/tooling
USER 65532:65532
ENTRYPOINT ["python", "-m", "mediagen_dev.e2e.serve"]
