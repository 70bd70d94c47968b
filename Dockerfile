# imagine-bot: a slim image that runs `python -m bot` as an unprivileged user.
# Not built in CI (no Docker daemon there); the tests only check this file's shape.
#   docker build -t imagine-bot .
#   docker run --env-file .env -v imagine-data:/app/data imagine-bot
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 imagine \
    && useradd --system --uid 10001 --gid imagine --home-dir /app --shell /usr/sbin/nologin imagine

WORKDIR /app

# The README's own install line, without the editable flag (nothing is edited in an image).
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
COPY fakes ./fakes
RUN pip install . \
    && mkdir -p /app/data \
    && chown imagine:imagine /app/data

# The default DATABASE_URL (sqlite+aiosqlite:///data/imagine.db) lands here: keep it on a volume.
VOLUME ["/app/data"]

USER imagine

# Only meaningful with METRICS_PORT set; without it the check passes (nothing to ask).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('METRICS_PORT', '0') or '0'; sys.exit(0) if port == '0' else urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4)"]

# SIGTERM (docker stop) shuts the bot down cleanly; give it time with --stop-timeout / stop_grace_period.
CMD ["python", "-m", "bot"]
