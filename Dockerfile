# premigrate container image: runs pending SQL migrations, then exits (initContainer, Job, compose service).
#
#   V=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)            # the package version is the image version
#   docker build --build-arg VERSION="$V" -t "premigrate:$V" .
#   docker run --rm -v "$PWD/migrations:/migrations:ro" -e DATABASE_URL=postgresql://app:secret@db:5432/app "premigrate:$V"
#
# The image holds no migrations: /migrations is an empty folder, and running it as it is exits 5 with a message.
# Bake yours in (FROM premigrate:<version> + COPY migrations /migrations, as the `bake` stage below does with this
# repository's examples) or mount them there. docs/deploy.md has the whole procedure.
#
# Keep this file buildable by buildah 1.28 / podman 4.3 (CI): no `COPY --link`, no `RUN <<EOF` heredocs.
# checkov:skip=CKV_DOCKER_2: a run-once migration job has nothing to probe while it runs; orchestrators watch its exit code (the `serve` sidecar has HTTP probes)
# checkov:skip=CKV_DOCKER_7: the base is the ARG PYTHON_IMAGE, pinned to python:3.12-slim-bookworm below; checkov cannot resolve the ARG
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# ---------------------------------------------------------------------------------------------------------------
# build: wheel -> venv with all dependencies -> bytecode. Nothing from this stage but /opt/venv and the
# compiled stdlib bytecode (/pyc) reaches the runtime image.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# binutils (build stage only) strips debug info from wheels' shared objects (pglast's parser ships 27 MB of it).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends binutils \
 && rm -rf /var/lib/apt/lists/*
# Bytecode is compiled here and shipped, because the runtime image has a read-only root and
# PYTHONDONTWRITEBYTECODE=1: it could never cache bytecode itself, and would compile every module at every start.
# unchecked-hash: the .pyc files stay valid whatever the file timestamps become when layers are copied or
# squashed (the image is immutable anyway).
# 1. The base image ships the stdlib without bytecode: compile it and stage only its __pycache__ folders under
#    /pyc, to be laid over the runtime stage's identical stdlib. The parent folders get their original modes
#    back (cp --parents leaves them 0700, which would lock uid 10001 out of /usr). First, so that it stays cached
#    while the source changes.
RUN stdlib="$(python -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')" \
 && python -m compileall -q -f -j 0 --invalidation-mode unchecked-hash \
      -x '/(test|tests|idlelib|tkinter|turtledemo|lib2to3|ensurepip|pydoc_data|site-packages)/' "$stdlib" \
 && mkdir -p /pyc \
 && find "$stdlib" -type d -name __pycache__ -not -path '*/site-packages/*' -exec cp -a --parents {} /pyc \; \
 && find /pyc -mindepth 1 -type d -not -name __pycache__ -exec sh -c 'chmod --reference="${1#/pyc}" "$1"' _ {} \;
WORKDIR /src
# 2. The dependencies, from pyproject.toml alone (cached until it changes). psycopg[binary] brings its own
#    libpq, so no compiler and no libpq-dev are needed.
COPY pyproject.toml ./
#    With the `otel` extra: OTEL_* settings give traces in the container too (imported only when they are set).
RUN python -m venv /opt/venv \
 && python -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; print("\n".join(p["dependencies"] + p["optional-dependencies"]["otel"]))' \
      >/tmp/requirements.txt \
 && /opt/venv/bin/python -m pip install --no-cache-dir --no-compile -r /tmp/requirements.txt
# 3. Build the wheel (isolated build env: the build backend is fetched, used and thrown away) and install it
#    with its dependencies (already there: nothing more is fetched unless pyproject.toml changed); then drop
#    pip and setuptools from the venv (nothing installs packages at run time), C sources shipped in wheels and
#    debug info in shared objects (only where there is some: the already stripped, patchelf-ed libraries of
#    psycopg-binary are left alone), and compile the venv, with the generated methods of premigrate's dataclasses
#    and the regular expressions a run compiles (src/premigrate/kept.py: ~25 ms of every start otherwise).
COPY README.md LICENSE ./
COPY src ./src
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
 && /opt/venv/bin/python -m pip install --no-cache-dir --no-compile /wheels/premigrate-*.whl \
 && /opt/venv/bin/python -m pip uninstall -y pip setuptools \
 && find /opt/venv -type f \( -name '*.c' -o -name '*.pyx' -o -name '*.pxd' \) -delete \
 && find /opt/venv -type f -name '*.so*' -exec sh -c 'readelf -S "$1" | grep -q "\.debug_" && strip --strip-debug "$1"; true' _ {} \; \
 && python -m compileall -q -f -j 0 --invalidation-mode unchecked-hash /opt/venv/lib \
 && /opt/venv/bin/python -c 'import premigrate.kept as c; c.fill()' \
 && /opt/venv/bin/premigrate --help >/dev/null
# 4. The image version (label below) must be the package's: a tag that says 0.2.0 on a 0.1.0 package is refused.
ARG VERSION=""
RUN installed="$(/opt/venv/bin/python -c 'import importlib.metadata as m; print(m.version("premigrate"))')" \
 && if [ -n "$VERSION" ] && [ "$VERSION" != "$installed" ]; then \
      echo "--build-arg VERSION=$VERSION, but the package (pyproject.toml) is $installed: build with VERSION=$installed" >&2; \
      exit 1; \
    fi

# ---------------------------------------------------------------------------------------------------------------
# runtime: the slim base + the venv + the entrypoint + an empty /migrations. No compiler, no pip cache, no tests.
FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=""
ARG SOURCE=""
LABEL org.opencontainers.image.title="premigrate" \
      org.opencontainers.image.description="Runs pending SQL migrations (PostgreSQL, MySQL/MariaDB, SQLite) before your application starts, then exits." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"
# A passwd entry for uid 10001 (getpass/libpq look the user up); no home directory, no login shell. /migrations is
# the (empty, root-owned) place for your migrations: a mount replaces it, a COPY in your own image fills it.
RUN groupadd --gid 10001 premigrate \
 && useradd --uid 10001 --gid 10001 --no-log-init --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin premigrate \
 && install -d -m 0755 /migrations
COPY --from=build /pyc/ /
COPY --from=build /opt/venv /opt/venv
COPY entrypoint.py /entrypoint.py
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

# ---------------------------------------------------------------------------------------------------------------
# bake: what your own image does, with this repository's example migrations: `docker build --target bake .`.
# docker-compose-prod*.yml build it; tests/containers/check.sh runs it. Your Dockerfile is just:
#   FROM premigrate:<version>
#   COPY migrations /migrations
FROM runtime AS bake
COPY migrations /migrations

# ---------------------------------------------------------------------------------------------------------------
# The default target (the last stage) is the image without migrations, as published.
FROM runtime
