# The procsight receiver. Configured by environment (docker/receiver.yaml says which variables); state
# (spool, embedded ClickHouse, baselines) under the /data volume.
#   docker build -f docker/receiver.Dockerfile -t procsight-receiver .
#   docker run -p 4317:4317 -p 4318:4318 -v procsight-data:/data procsight-receiver
FROM python:3.11-slim-bookworm
WORKDIR /app
COPY pyproject.toml setup.py README.md ./
COPY core ./core
COPY procsight ./procsight
COPY scoring ./scoring
COPY otlp_receiver ./otlp_receiver
COPY otel_agent ./otel_agent
# gcc builds procsight's C extensions (setup.py) and leaves with its packages; the image has Python's headers.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install --no-cache-dir . && apt-get purge -y --auto-remove gcc libc6-dev && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /data procsight && mkdir -p /data && chown procsight /data
COPY docker/receiver.yaml /etc/procsight/receiver.yaml
USER procsight
WORKDIR /data
# OTLP/gRPC and OTLP/HTTP; the HTTP port also serves /healthz, /metrics and the query routes.
EXPOSE 4317 4318
# /healthz answers without a token. The image has no curl: Python's urllib does the request.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:4318/healthz', timeout=4)"]
ENTRYPOINT ["procsight", "receiver", "--config", "/etc/procsight/receiver.yaml"]
