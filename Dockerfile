# syntax=docker/dockerfile:1
# One image for every Meadow process; the command picks the role:
#   meadow api <service> | worker <service> | scheduler content | migrate <service> | replay … | dlq-redrive …
#
#   docker build -t meadow:0.1.0 .
#
# Build stage: a virtualenv at /opt/meadow from the pinned lock (uv), then the workspace packages
# (libs/*, devstack, services/*) installed editable from /app, so each service's migrations/ directory
# stays where `meadow migrate` looks for it. The runtime stage copies both and nothing else: no uv,
# no pip cache, no compilers.
FROM python:3.11-slim-bookworm AS build
ARG UV_VERSION=0.13.9
# the lock to install: requirements.lock is the whole workspace's (dev tools included)
ARG LOCK_FILE=requirements.lock
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_LINK_MODE=copy
RUN python -m pip install "uv==${UV_VERSION}" \
 && python -m venv /opt/meadow
ENV VIRTUAL_ENV=/opt/meadow PATH=/opt/meadow/bin:$PATH
WORKDIR /app
COPY ${LOCK_FILE} /tmp/requirements.lock
# wheels only: the final image has no compiler, so neither does this stage
RUN uv pip sync --python /opt/meadow/bin/python --no-build /tmp/requirements.lock
COPY pyproject.toml ./
COPY libs/ libs/
COPY devstack/ devstack/
COPY services/ services/
RUN uv pip install --python /opt/meadow/bin/python --no-deps --no-build-isolation \
      -e libs/contracts -e libs/runtime -e devstack \
      -e services/membership -e services/content -e services/rewards -e services/segments \
 && python -m compileall -q /app /opt/meadow/lib \
 && /opt/meadow/bin/meadow --help > /dev/null

# same base as the build stage: the venv's interpreter symlinks point into it
FROM python:3.11-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="meadow" \
      org.opencontainers.image.description="Meadow services: membership, content, rewards, segments"
# numeric UID/GID so Kubernetes can verify runAsNonRoot; matches runAsUser in deploy/
RUN groupadd --system --gid 10001 meadow \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin meadow
COPY --from=build /opt/meadow /opt/meadow
COPY --from=build /app /app
ENV PATH=/opt/meadow/bin:$PATH \
    VIRTUAL_ENV=/opt/meadow \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    XDG_RUNTIME_DIR=/tmp
WORKDIR /app
USER 10001:10001
# 8000: the API; 9000: `--health-port` of a worker or scheduler (/healthz, /metrics), as deploy/ uses it
EXPOSE 8000 9000
# Kubernetes probes those ports itself (deploy/); the role, and so the port, is only known at run time.
HEALTHCHECK NONE
ENTRYPOINT ["meadow"]
CMD ["--help"]
