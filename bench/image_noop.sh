#!/usr/bin/env bash
# No-op `up` inside the container image: 100 migrations already applied, `up` again, against the PostgreSQL on
# this host. Prints medians for
#   - floor:       a minimal Python script in the same image (import psycopg, connect, read the history table)
#   - up:          python /entrypoint.py up, with the bytecode the image ships
#   - up, no pyc:  the same with the shipped bytecode ignored (PYTHONPYCACHEPREFIX pointing at an empty folder;
#                  the image sets PYTHONDONTWRITEBYTECODE=1, so every start compiles every module it imports)
# timed inside one container (interleaved A B C A B C ..., so container start-up is not part of the figures),
# then `podman run ... up` end to end (container start included), with and without the bytecode.
#
#   bash bench/image_noop.sh            # RUNS=30 by default
#   RUNS=50 bash bench/image_noop.sh
#
# The image is built the way tests/containers/check.sh builds it (podman/buildah with runc, a debootstrap
# stand-in for python:3.12-slim-bookworm cached in $CTR_WORK, `buildah bud --pull=never`): its set-up and build
# functions are reused from that file, so the two cannot drift apart. Cold (no cached base) this takes a few
# minutes; warm, seconds. Needs root, PyPI and the Debian mirror, like check.sh.
#
# Environment: CTR_WORK, CTR_DRIVER, CTR_PG as in check.sh; CTR_IMAGE (default localhost/premigrate:bench); RUNS.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-30}
export CTR_IMAGE=${CTR_IMAGE:-localhost/premigrate:bench}

# check.sh ends by running its checks; take everything before that (settings, helpers, engine set-up, base and
# image build) and fail loudly if its layout changed.
# shellcheck disable=SC1090
source <(sed -n '/^ROOT=\$PWD/,/^# ---- main/p' tests/containers/check.sh)
for f in engine_setup build_base build_image pg_db step ok fail summary; do
  declare -F "$f" >/dev/null || { echo "tests/containers/check.sh no longer defines $f()" >&2; exit 1; }
done

engine_setup
build_base
build_image

step "database: 100 migrations applied once"
MIG="$W/bench-noop-migrations"
rm -rf "$MIG"; mkdir -p "$MIG"
for i in $(seq -w 1 100); do
  printf 'CREATE TABLE t_%s (id integer PRIMARY KEY, name varchar(50));\nCREATE INDEX i_%s ON t_%s (name);\n' \
    "$i" "$i" "$i" >"$MIG/V${i}__create_t${i}.sql"
done
chmod -R a+rX "$MIG"
pg_db noop
URL="postgresql://postgres@${PG_HOSTPORT}/$DB"
BENCH_RUN=("${RUN[@]}" -v "$MIG:/migrations:ro" -e DATABASE_URL="$URL")
"${BENCH_RUN[@]}" "$IMG" up >"$W/bench-first.log" 2>&1 || { tail -5 "$W/bench-first.log"; fail "first up"; }
grep -q '"applied": 100' "$W/bench-first.log" || { tail -3 "$W/bench-first.log"; fail "first up did not apply 100"; }
ok "applied 100 migrations to $DB"

step "inside one container: floor vs up vs up without bytecode ($RUNS interleaved rounds)"
"${BENCH_RUN[@]}" -e RUNS="$RUNS" --entrypoint python "$IMG" -c '
import os, resource, statistics, subprocess, sys, time
floor = ("import os, psycopg\n"
         "with psycopg.connect(os.environ[\"DATABASE_URL\"]) as c:\n"
         "    c.execute(\"SELECT * FROM premigrate_history\").fetchall()\n")
base = dict(os.environ)
cases = [("floor (psycopg script)", base, [sys.executable, "-c", floor]),
         ("up", base, [sys.executable, "/entrypoint.py", "up"]),
         ("up, no bytecode", dict(base, PYTHONPYCACHEPREFIX="/tmp/no-pyc"), [sys.executable, "/entrypoint.py", "up"])]
times = {c[0]: [] for c in cases}; rss = {c[0]: [] for c in cases}
for i in range(int(os.environ["RUNS"]) + 2):
    for label, env, cmd in cases:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(p.pid, 0)
        elapsed = time.perf_counter() - t
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"{label}: exit {os.waitstatus_to_exitcode(status)}")
        if i >= 2:  # the first two rounds warm the page cache
            times[label].append(elapsed * 1000); rss[label].append(usage.ru_maxrss / 1024)
f = statistics.median(times[cases[0][0]])
for label, _, _ in cases:
    m = statistics.median(times[label])
    print(f"   {label:24s} median {m:6.0f} ms  (min {min(times[label]):4.0f}, max {max(times[label]):4.0f})"
          f"  {m / f:4.2f}x floor   peak RSS {statistics.median(rss[label]):5.1f} MB")
'

step "end to end: podman run ... up (container start included; $((RUNS / 3 > 5 ? RUNS / 3 : 5)) interleaved rounds)"
n=$((RUNS / 3 > 5 ? RUNS / 3 : 5))
ms_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.0f", (b - a) * 1000 }'; }
with=(); without=()
for _ in $(seq "$n"); do
  t1=$(now); "${BENCH_RUN[@]}" "$IMG" up >/dev/null 2>&1 || fail "podman run up"; with+=("$(ms_since "$t1")")
  t1=$(now); "${BENCH_RUN[@]}" -e PYTHONPYCACHEPREFIX=/tmp/no-pyc "$IMG" up >/dev/null 2>&1 || fail "podman run up (no pyc)"
  without+=("$(ms_since "$t1")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
echo "   podman run up, with bytecode     median $(median "${with[@]}") ms"
echo "   podman run up, without bytecode  median $(median "${without[@]}") ms"
summary
