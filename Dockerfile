# premigrate container image: runs pending SQL migrations, then exits (initContainer, Job, compose service).
#
#   docker build -t premigrate .
#   docker run --rm -e DATABASE_URL=postgresql://app:secret@db:5432/app premigrate        # = premigrate up
#
# Keep this file buildable by buildah 1.28 / podman 4.3 (CI): no `COPY --link`, no `RUN <<EOF` heredocs.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# ---------------------------------------------------------------------------------------------------------------
# build: wheel -> venv with all dependencies -> bytecode. Nothing from this stage but /opt/venv and the
# compiled stdlib bytecode reaches the runtime image.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# 1. build the wheel (isolated build env: the build backend is fetched, used and thrown away);
# 2. install it with its dependencies into a fresh venv; psycopg[binary] brings its own libpq, so no compiler
#    and no libpq-dev are needed;
# 3. drop pip and setuptools from the venv: nothing installs packages at run time.
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
 && python -m venv /opt/venv \
 && /opt/venv/bin/python -m pip install --no-cache-dir --no-compile /wheels/premigrate-*.whl \
 && /opt/venv/bin/python -m pip uninstall -y pip setuptools \
 && /opt/venv/bin/premigrate --help >/dev/null
# Bytecode, compiled here and shipped, because the runtime image has a read-only root and
# PYTHONDONTWRITEBYTECODE=1, so it could never cache bytecode itself. unchecked-hash: the .pyc files stay valid
# whatever the file timestamps become when layers are copied or squashed (the image is immutable anyway).
# The base image ships the stdlib without bytecode, so its .pyc files are compiled too and staged under
# /pyc (only the __pycache__ folders) to be overlaid on the runtime stage's identical stdlib.
RUN python -m compileall -q -f -j 0 --invalidation-mode unchecked-hash /opt/venv/lib \
 && stdlib="$(python -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')" \
 && python -m compileall -q -f -j 0 --invalidation-mode unchecked-hash \
      -x '/(test|tests|idlelib|tkinter|turtledemo|lib2to3|ensurepip|pydoc_data|site-packages)/' "$stdlib" \
 && mkdir -p /pyc \
 && find "$stdlib" -type d -name __pycache__ -not -path '*/site-packages/*' -exec cp -a --parents {} /pyc \;

# ---------------------------------------------------------------------------------------------------------------
# runtime: the slim base + the venv + the entrypoint + the example migrations. No compiler, no pip cache, no tests.
FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG SOURCE=https://github.com/premigrate/premigrate
LABEL org.opencontainers.image.title="premigrate" \
      org.opencontainers.image.description="Runs pending SQL migrations (PostgreSQL, MySQL/MariaDB, SQLite) before your application starts, then exits." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"
# A passwd entry for uid 10001 (getpass/libpq look the user up); no home directory, no login shell.
RUN groupadd --gid 10001 premigrate \
 && useradd --uid 10001 --gid 10001 --no-log-init --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin premigrate
COPY --from=build /pyc/ /
COPY --from=build /opt/venv /opt/venv
COPY entrypoint.py /entrypoint.py
COPY migrations /migrations
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PREMIGRATE_REQUIRE_DATABASE=1 \
    PREMIGRATE_DIR=/migrations
# Nothing is written outside /tmp: works with a read-only root file system (mount a tmpfs/emptyDir at /tmp).
WORKDIR /tmp
USER 10001:10001
# Exec form: Python is PID 1 and receives SIGTERM itself (premigrate cancels the statement, rolls back,
# releases its lock and exits 143).
ENTRYPOINT ["python", "/entrypoint.py"]
CMD ["up"]
