# Tollgate's gateway as a container: `tollgate serve` (uvicorn) on 0.0.0.0:7071.
#
#   docker build -t tollgate .
#   docker run --env-file deploy/tollgate.env -p 127.0.0.1:7071:7071 \
#       -v tollgate-state:/var/lib/tollgate tollgate
#
# Nothing secret is in the image: upstream keys come at run time, from Key Vault
# (TOLLGATE_KEYVAULT_URL) or TOLLGATE_SECRET_<NAME>. docs/on-premises.md has the rest.
# tests/test_packaging.py replays this file's `pip install` lines and COPY lines in a fresh venv
# and serves from it: keep each install a plain `pip install` (joined with && if need be).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/tollgate \
    PATH=/opt/tollgate/bin:$PATH

# A venv of its own and a user of its own, whose only writable folder is the state volume.
RUN python -m venv /opt/tollgate \
 && useradd --system --user-group --uid 10001 --home-dir /var/lib/tollgate \
        --shell /usr/sbin/nologin tollgate \
 && install -d -o tollgate -g tollgate -m 0750 /var/lib/tollgate

WORKDIR /app

# What `make install` installs, without the dev tools: the Functions app's runtime requirements
# (what Azure installs), then the server `tollgate serve` runs, uvicorn with uvloop and
# httptools, at the versions requirements-dev.txt asks for (its other lines are dev tools).
COPY requirements.txt ./
RUN pip install -r requirements.txt "uvicorn>=0.30" "uvloop>=0.21" "httptools>=0.6"

# Then the package, as `make install` has it: editable, so the code runs from /app. asgi.py reads
# the route prefix from host.json beside itself, and a built wheel does not carry host.json: the
# routes would move under /api/ (`/api/gateway/chat/completions/...`).
COPY pyproject.toml asgi.py function_app.py host.json ./
COPY shared ./shared
RUN pip install --no-deps -e . \
 && python -m compileall -q asgi.py function_app.py shared

# Every store the gateway writes is a folder in the volume (or a blob container, when these are
# set to one: see compose.yaml). The defaults, `.tollgate/...`, would be under read-only /app.
ENV TOLLGATE_REGISTRY=/var/lib/tollgate/systems.json \
    TOLLGATE_USAGE_RECORDS=/var/lib/tollgate/usage \
    TOLLGATE_CONTENT_LOG=/var/lib/tollgate/content \
    TOLLGATE_AUDIT_LOG=/var/lib/tollgate/audit \
    TOLLGATE_PROBE_RESULTS=/var/lib/tollgate/probe-results \
    TOLLGATE_PROBE_SPOOL=/var/lib/tollgate/probe-spool \
    TOLLGATE_WORKERS=1
VOLUME ["/var/lib/tollgate"]

USER tollgate
EXPOSE 7071

# Liveness only: /healthz answers while the process does. Point a load balancer at /readyz.
# (slim has no curl; urlopen raises, and python exits 1, on anything but a 2xx.)
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7071/healthz', timeout=4)"]

# One worker process per CPU given to the container (TOLLGATE_WORKERS); with more than one, set
# TOLLGATE_REDIS_URL so that limits are shared. exec: tollgate is PID 1 and gets SIGTERM.
CMD ["sh", "-c", "exec tollgate serve --host 0.0.0.0 --port 7071 --workers \"${TOLLGATE_WORKERS:-1}\""]
