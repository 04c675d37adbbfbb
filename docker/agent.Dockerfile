# The procsight host agent. It watches the host, not the container: run it with the host's PID and network
# namespaces, tracefs, kernel headers and the capabilities eBPF needs (docker/compose.yaml and
# docker/kubernetes/agent-daemonset.yaml show how, as Falco's and Tetragon's manifests do).
#   docker build -f docker/agent.Dockerfile -t procsight-agent .
FROM debian:bookworm-slim
# bcc's Python bindings come from Debian (the PyPI package named bcc is unrelated); Debian's python3 is 3.11,
# the version procsight supports, so the virtualenv sees them through --system-site-packages. gcc, libc6-dev
# and python3-dev build procsight's C extensions (setup.py) and are removed once it is installed.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-bpfcc bpfcc-tools ca-certificates \
       gcc libc6-dev python3-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml setup.py README.md ./
COPY core ./core
COPY procsight ./procsight
COPY scoring ./scoring
COPY otlp_receiver ./otlp_receiver
COPY otel_agent ./otel_agent
RUN python3 -m venv --system-site-packages /opt/procsight && /opt/procsight/bin/pip install --no-cache-dir . \
    && apt-get purge -y --auto-remove gcc libc6-dev python3-dev && mkdir -p /var/lib/procsight/spool
COPY docker/agent.yaml /etc/procsight/agent.yaml
ENV PATH=/opt/procsight/bin:$PATH
ENTRYPOINT ["procsight", "agent", "--config", "/etc/procsight/agent.yaml"]
