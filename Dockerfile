# The operator image. Build from the repository root:
#   docker build -t <registry>/mltrl-operator:0.1.0 .
# and set the chart's image.repository to <registry>/mltrl-operator.
# Pin the base image by digest as well (python:3.11.14-slim-trixie@sha256:...) in CI.
FROM python:3.11.14-slim-trixie

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# The user the chart runs the pod as. A passwd entry, so that tools asking for the user
# name (kopf does, when POD_ID is not set) find one.
RUN groupadd --system --gid 65532 mltrl \
    && useradd --system --uid 65532 --gid 65532 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin mltrl

WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
# pip compiles the bytecode here: the root filesystem is read-only at run time.
RUN pip install --no-cache-dir . \
    && rm -rf /src

WORKDIR /
USER 65532:65532
# liveness, metrics, Alertmanager receiver, admission webhooks (HTTPS)
EXPOSE 8080 9090 9091 9443
ENTRYPOINT ["mltrl"]
CMD ["run"]
