# The harmscan image: flows, the Prefect worker, the Kafka consumer and the MLflow server all run
# from it (docker-compose.yml). CPU-only torch keeps it around 1.5 GB instead of 6+ GB with CUDA.
FROM python:3.11-slim-bookworm

ARG TORCH_VERSION=2.15.0
ARG TORCHVISION_VERSION=0.29.2
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HARMSCAN_PROFILE=compose

# curl only for container health checks; no compiler needed (all wheels).
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Dependencies first (cached layer): CPU torch from PyTorch's index, the rest pinned by the lock
# without its CUDA wheels; Postgres drivers for MLflow (psycopg2) and Prefect (asyncpg, in the lock).
COPY requirements.lock ./
RUN pip install --index-url "${TORCH_INDEX}" \
        "torch==${TORCH_VERSION}" "torchvision==${TORCHVISION_VERSION}" \
    && grep -vE '^(torch|torchvision|triton|nvidia-|cuda-)' requirements.lock > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt psycopg2-binary \
    && rm /tmp/requirements.txt

COPY pyproject.toml README.md ./
COPY conf ./conf
COPY harmscan ./harmscan
COPY tasks ./tasks
COPY flows ./flows
COPY serving ./serving
COPY stack ./stack
COPY review ./review
COPY cli ./cli
COPY registry ./registry
COPY kafkaio ./kafkaio
# The fixed photo gate set the promotion gate scores on (mlflow.gate_set in the compose profile).
COPY gateset ./gateset
# The default head's pools: the gate learns photos from photopool, the probe also trains on
# drawpool, iconpool and glyphpool.
COPY photopool ./photopool
COPY drawpool ./drawpool
COPY iconpool ./iconpool
COPY glyphpool ./glyphpool
RUN pip install --no-deps -e . \
    && useradd --create-home --uid 10001 harmscan \
    && mkdir -p /data/harmscan \
    && chown -R harmscan /data/harmscan /app

USER harmscan
VOLUME ["/data/harmscan"]
ENTRYPOINT ["harmscan"]
CMD ["--help"]
