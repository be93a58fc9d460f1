# syntax=docker/dockerfile:1
#
# triage-gateway container image.
#
#   docker build -t triage-gateway:0.1.0 .
#   docker run --rm -p 8080:8080 -e GATEWAY_API_KEYS=change-me triage-gateway:0.1.0
#
# `serve` refuses to bind 0.0.0.0 without GATEWAY_API_KEYS. With no GATEWAY_REDIS_URL it starts
# an embedded redis-server under GATEWAY_DATA_DIR (fine for a single container; Kubernetes
# points every replica at one shared Redis instead, see k8s/ and docs/kubernetes.md).

ARG PYTHON_IMAGE=python:3.11-slim

# ---- builder: a self-contained virtual environment in /opt/triage-gateway ----------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN python -m venv /opt/triage-gateway
ENV PATH=/opt/triage-gateway/bin:$PATH

WORKDIR /src

# Dependencies first (their own layer, rebuilt only when pyproject.toml changes).
COPY pyproject.toml README* LICENSE* ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# Then the project itself (a wheel built from the source tree and installed into the venv).
# The runtime ships the online service, the CLI and the offline packages it runs; the upstream
# simulators (devtools/), the seed-set generator (tools/) and the load tests stay out.
COPY gateway ./gateway
COPY cli ./cli
COPY training ./training
COPY eval ./eval
RUN pip install . \
    && triage-gateway --help > /dev/null

# ---- runtime: the venv, a non-root user, nothing else -----------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="triage-gateway" \
      org.opencontainers.image.description="A/B routing inference gateway for LLM triage of app-store reviews" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"

# uid/gid 10001: the same numbers k8s/ pins in runAsUser/runAsGroup/fsGroup.
RUN groupadd --system --gid 10001 triage \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/triage-gateway \
        --no-create-home --shell /usr/sbin/nologin triage \
    && mkdir -p /var/lib/triage-gateway \
    && chown 10001:10001 /var/lib/triage-gateway \
    && chmod 0750 /var/lib/triage-gateway

COPY --from=builder /opt/triage-gateway /opt/triage-gateway

# The zero-setup baseline local model, shipped trained in the package, copied into the data dir
# (a volume made from the image starts with it; an empty mount gets it copied by `serve`).
RUN /opt/triage-gateway/bin/python -c "from pathlib import Path; from training.baseline_card import install_packaged_baseline as i; assert i(Path('/var/lib/triage-gateway'))" \
    && chown -R 10001:10001 /var/lib/triage-gateway/models

# GATEWAY_DATA_DIR holds the embedded Redis (when used), the pair spool and the cached local
# model: mount a writable volume there (Kubernetes: an emptyDir; the root fs is read-only).
ENV PATH=/opt/triage-gateway/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GATEWAY_DATA_DIR=/var/lib/triage-gateway \
    LITELLM_LOCAL_MODEL_COST_MAP=True

WORKDIR /var/lib/triage-gateway
USER 10001:10001
VOLUME ["/var/lib/triage-gateway"]
EXPOSE 8080

# Liveness only (the process answers); readiness (Redis reachable) is /readyz, used by Kubernetes.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=3).status == 200 else 1)"]

ENTRYPOINT ["triage-gateway"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
