# wecom-actors in a container: slim Python, a non-root user, JSON logs, a health check on /healthz.
#   docker build -t wecom-actors .
#   docker run --rm -e WECOM_BOT_ID=... -e WECOM_BOT_SECRET=... wecom-actors
# A fleet: mount the file and run `wecom-actors run --config /etc/wecom/fleet.toml` (docs/deploy.md).
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY wecom_actors ./wecom_actors
RUN pip install . \
    && rm -rf /src \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin wecom

USER 10001:10001
WORKDIR /tmp

# The admin listener (/metrics, /healthz, /readyz) on every interface inside the container, port
# 9100; webhook mode also listens on WECOM_PORT (8080). Logs: one JSON object a line on stderr.
ENV WECOM_HOST=0.0.0.0 \
    WECOM_ADMIN_PORT=9100 \
    WECOM_LOG_FORMAT=json
EXPOSE 9100 8080

HEALTHCHECK --interval=30s --timeout=3s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('WECOM_ADMIN_PORT', '9100'), timeout=2)"

ENTRYPOINT ["wecom-actors"]
CMD ["run"]
