# syntax=docker/dockerfile:1
# The Senior Review GitHub App: `docker build -t senior-review .` then see docs/deploy.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# An unprivileged user with a fixed numeric id (volume ownership, Kubernetes runAsNonRoot).
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app \
 && mkdir -p /data \
 && chown app:app /data

WORKDIR /app

# Dependencies first, from pyproject.toml alone: this layer is rebuilt only when pyproject.toml changes.
COPY pyproject.toml ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; open('requirements.txt', 'w').write('\n'.join(deps) + '\n')" \
 && pip install -r requirements.txt \
 && rm requirements.txt

# Then the package itself, installed (migrations ship inside `bot/store/`, prompts as data files), so the image
# runs the `senior-review` console script like any `pip install .` would.
COPY README.md ./
COPY bot ./bot
COPY prompts ./prompts
COPY schema ./schema
RUN pip install --no-deps . \
 && rm -rf bot prompts schema build ./*.egg-info

ENV HOST=0.0.0.0 \
    PORT=8000 \
    DATA_DIR=/data

USER 10001:10001
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]

CMD ["senior-review", "serve"]
