# Crypto backtesting REST API (Flask + gunicorn) against an external PostgreSQL.
# Build: docker build -t crypto-backtest-api .   Run via docker-compose.yml.
FROM python:3.11-slim

# PYTHONPATH: a `dask worker` started in this image imports the app's package (EXECUTOR=dask)
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=5001

WORKDIR /app

# Unprivileged runtime user (PostgreSQL, if the embedded one is ever used,
# also refuses to run as root).
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --create-home --home-dir /home/app app

# Dependencies first so code edits do not invalidate this (slow) layer.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

# Application code stays root-owned, so the app user cannot modify it.
COPY api/ ./api/
COPY migrations/ ./migrations/
COPY alembic.ini gunicorn.conf.py dask.yaml ./

# Only used when DATABASE_URL is unset (embedded PostgreSQL); must be writable.
# numba's kernel cache must be writable too (the code directory is not).
# DASK_CONFIG: a `dask worker` started from this image spawns its worker as dask.yaml says.
ENV PGSERVER_DIR=/home/app/.pgdata \
    NUMBA_CACHE_DIR=/home/app/.cache/numba \
    DASK_CONFIG=/app/dask.yaml

USER app

# Compile the engine's kernels into the image's cache, so a container on the
# same CPU model starts in well under a second (another CPU recompiles once).
RUN python -c "from api.engine import warm_up; print(f'engine kernels ready in {warm_up():.1f} s')"

EXPOSE 5001

# slim has no curl: probe with the standard library. urlopen raises on non-2xx,
# which exits non-zero and marks the container unhealthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/api/health' % os.environ.get('PORT', '5001'), timeout=4)"

# gunicorn.conf.py (threaded workers, GUNICORN_THREADS) is the one gunicorn configuration: make run uses it too
CMD ["gunicorn", "-c", "gunicorn.conf.py", "api:create_app()"]
