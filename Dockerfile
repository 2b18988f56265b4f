# Radio Silence: one process serving the web pages, /api/v1 and the background workers.
#   docker build -t radiosilence .
#   docker run -p 8000:8000 -e RADIOSILENCE_SECRET_KEY=... -v rs-data:/data radiosilence
# For a team (PostgreSQL, one API process, N workers): docker-compose.yml, see the README.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RADIOSILENCE_DATABASE_URL=sqlite+aiosqlite:////data/radiosilence.db \
    RADIOSILENCE_HOST=0.0.0.0 \
    RADIOSILENCE_PORT=8000

WORKDIR /app
COPY pyproject.toml README.md ./
COPY app ./app
COPY templates ./templates
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /data radiosilence \
    && mkdir -p /data && chown radiosilence /data

USER radiosilence
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
# `serve` applies pending migrations before it listens.
CMD ["radiosilence", "serve"]
