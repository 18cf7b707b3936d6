# DALT backend, RQ worker and scripts in one image (the compose file picks the command).
# CPU-only PyTorch keeps the image small: pass your CPU wheel index with
#   docker compose build --build-arg PIP_EXTRA_INDEX_URL=<CPU wheel index URL>
FROM python:3.11-slim

ARG PIP_EXTRA_INDEX_URL=""
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OMP_NUM_THREADS=1 \
    OPENBLAS_NUM_THREADS=1 \
    MKL_NUM_THREADS=1

WORKDIR /app

# Dependencies first (cached while only the code changes): install the project once with empty packages,
# then the real code without touching the dependencies again.
COPY pyproject.toml README.md ./
RUN mkdir -p backend encoder \
    && touch backend/__init__.py encoder/__init__.py \
    && pip install . \
    && pip uninstall -y dalt

COPY backend ./backend
COPY encoder ./encoder
COPY scripts ./scripts
COPY gunicorn.conf.py ./
RUN pip install --no-deps . \
    && useradd --system --uid 10001 --home-dir /app dalt

USER dalt
# Inside a container loopback is unreachable from outside: listen on every interface of the container and
# decide who reaches it where the port is published (compose: 127.0.0.1 only).
ENV HOST=0.0.0.0
EXPOSE 9090
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=6 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://localhost:9090/health', timeout=3)"
# gunicorn.conf.py: bind $HOST:9090, DALT_HTTP_WORKERS workers, access log on stdout.
CMD ["gunicorn", "backend.app:create_app()"]
