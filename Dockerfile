# One image for every role: worker, simulator (and later the HTTP ingress).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY common ./common
COPY producer ./producer
COPY worker ./worker
COPY simulator ./simulator
COPY src ./src
RUN pip install .[flower] && useradd --system --uid 10001 htap
USER htap
CMD ["htap-sync", "--help"]
