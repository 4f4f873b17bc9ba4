#!/usr/bin/env python3
"""Policy check for the Kubernetes manifests under k8s/ (run by tests/containers/check.sh).

check.sh renders the base (k8s/) and every example (k8s/examples/NAME/: `kubectl kustomize` where there is a
kustomization.yaml, the plain manifests concatenated otherwise) and passes each render here as NAME=FILE. The
schema (kubernetes-validate) cannot express policy, so this script checks, on every render:

1. the Kubernetes OpenAPI schema, strict (unknown fields are errors), for each requested Kubernetes version;
2. every container (initContainers and containers) of every workload (Pod, Deployment, StatefulSet, DaemonSet,
   ReplicaSet, Job, CronJob):
   - securityContext: runAsNonRoot true, runAsUser 10001, readOnlyRootFilesystem true,
     allowPrivilegeEscalation false, capabilities.drop [ALL] (and no capabilities.add),
     seccompProfile.type RuntimeDefault, all set on the container itself;
   - resources.requests and resources.limits, each with cpu and memory;
   - terminationMessagePolicy FallbackToLogsOnError;
   - an emptyDir volume mounted at /tmp (the root file system is read-only);
   - the premigrate image (repository named `premigrate`) tagged with the package version (--version);
   every Job: restartPolicy Never, backoffLimit and ttlSecondsAfterFinished; and something runs `premigrate up`;
3. every `checkov.io/skip*` annotation carries a reason (`CKV_ID=why`);
4. the base (--base NAME): no Secret, no workload but Jobs (no demo app), no ConfigMap of migrations, no volume
   that needs a ConfigMap, and the Secret the Job reads is referenced by name and not created;
5. each example: a `# Pick this when:` line in its folder, and what its pattern is about (EXPECTATIONS below);
6. every kustomization reached from a rendered folder lists every *.yaml beside it (a file nobody lists is a file
   nobody applies).

Usage: k8s_policy.py --version 0.1.0 [--k8s-version 1.28.0 1.37.0 ...] [--base base] [--migrations DIR]
                     NAME=RENDER.yaml[@SOURCE_DIR] ...
Exit 0 when everything passes, 1 with one line per violation otherwise.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

try:
    import kubernetes_validate  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - the check script always runs this from the tools venv
    sys.exit("k8s_policy.py needs kubernetes-validate (pip install kubernetes-validate)")

UID = 10001
WORKLOADS = {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"}
EXPECTED_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": UID,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
}
SECRET_NAME = "premigrate-database"
SERVE_DEFAULT_PORT = 8080
Doc = dict[str, Any]


# -- walking the rendered documents -----------------------------------------------------------------------------

def pod_spec(doc: Doc) -> Doc | None:
    kind, spec = doc.get("kind"), doc.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        return (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec")
    return (spec.get("template") or {}).get("spec")


def containers(spec: Doc) -> Iterator[tuple[str, Doc]]:
    for c in spec.get("initContainers") or []:
        yield "initContainers", c
    for c in spec.get("containers") or []:
        yield "containers", c


def workloads(docs: list[Doc]) -> Iterator[tuple[Doc, Doc]]:
    for d in docs:
        if d.get("kind") in WORKLOADS and (spec := pod_spec(d)):
            yield d, spec


def name_of(doc: Doc) -> str:
    return f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"


def is_premigrate_image(image: str) -> bool:
    repo = image.split("@")[0].rsplit("/", 1)[-1].split(":")[0]
    return repo == "premigrate"


def image_tag(image: str) -> str | None:
    ref = image.split("@")[0]
    last = ref.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def runs(c: Doc, command: str) -> bool:
    args = [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]
    return command in args[:2]


# -- 2: every container, every Job ------------------------------------------------------------------------------

def check_container(where: str, c: Doc, volumes: Doc, version: str, errors: list[str]) -> None:
    sc = c.get("securityContext") or {}
    for key, want in EXPECTED_SECURITY.items():
        if sc.get(key) != want:
            errors.append(f"{where}: securityContext.{key} is {sc.get(key)!r}, expected {want!r}")
    caps = sc.get("capabilities") or {}
    if "ALL" not in (caps.get("drop") or []):
        errors.append(f"{where}: securityContext.capabilities.drop must contain ALL")
    if caps.get("add"):
        errors.append(f"{where}: securityContext.capabilities.add must be empty, got {caps['add']}")
    if (sc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        errors.append(f"{where}: securityContext.seccompProfile.type must be RuntimeDefault")
    if sc.get("privileged"):
        errors.append(f"{where}: privileged container")
    res = c.get("resources") or {}
    for kind in ("requests", "limits"):
        for r in ("cpu", "memory"):
            if not (res.get(kind) or {}).get(r):
                errors.append(f"{where}: resources.{kind}.{r} is missing")
    if c.get("terminationMessagePolicy") != "FallbackToLogsOnError":
        errors.append(f"{where}: terminationMessagePolicy must be FallbackToLogsOnError")
    tmp = [m for m in c.get("volumeMounts") or [] if m.get("mountPath", "").rstrip("/") == "/tmp"]
    if not tmp:
        errors.append(f"{where}: no volume mounted at /tmp")
    elif "emptyDir" not in volumes.get(tmp[0].get("name"), {}):
        errors.append(f"{where}: the volume at /tmp ({tmp[0].get('name')!r}) is not an emptyDir")
    image = str(c.get("image") or "")
    if not image:
        errors.append(f"{where}: no image")
    elif is_premigrate_image(image) and image_tag(image) != version and "@" not in image:
        errors.append(f"{where}: image {image!r}: the premigrate image must be tagged {version} (pyproject.toml)")


def check_workloads(name: str, docs: list[Doc], version: str, errors: list[str]) -> tuple[int, int]:
    n_workloads = n_containers = 0
    for d, spec in workloads(docs):
        n_workloads += 1
        where = f"{name}: {name_of(d)}"
        volumes = {v.get("name"): v for v in spec.get("volumes") or []}
        for group, c in containers(spec):
            n_containers += 1
            check_container(f"{where} {group}[{c.get('name')}]", c, volumes, version, errors)
        if d["kind"] in ("Job", "CronJob"):
            job = d["spec"] if d["kind"] == "Job" else d["spec"]["jobTemplate"]["spec"]
            if spec.get("restartPolicy") != "Never":
                errors.append(f"{where}: restartPolicy must be Never (got {spec.get('restartPolicy')!r})")
            for key in ("backoffLimit", "ttlSecondsAfterFinished"):
                if job.get(key) is None:
                    errors.append(f"{where}: spec.{key} is missing")
    if not n_workloads:
        errors.append(f"{name}: no workloads")
    elif not any(runs(c, "up") for d, spec in workloads(docs) for group, c in containers(spec)
                 if d["kind"] in ("Job", "CronJob") or group == "initContainers"):
        errors.append(f"{name}: nothing runs `premigrate up` (a Job, or an initContainer of the app)")
    return n_workloads, n_containers


def check_skip_reasons(name: str, docs: list[Doc], errors: list[str]) -> None:
    for d in docs:
        for key, value in ((d.get("metadata") or {}).get("annotations") or {}).items():
            if key.startswith("checkov.io/skip"):
                check_id, sep, reason = str(value).partition("=")
                if not sep or len(reason.strip()) < 15 or not check_id.startswith(("CKV_", "CKV2_")):
                    errors.append(f"{name}: {name_of(d)}: {key} must be `CKV_ID=reason` with a reason, got {value!r}")


# -- 4: the base ------------------------------------------------------------------------------------------------

def check_base(name: str, docs: list[Doc], errors: list[str]) -> None:
    kinds = [d.get("kind") for d in docs]
    for d in docs:
        if d.get("kind") == "Secret":
            errors.append(f"{name}: the base creates {name_of(d)}: applying it would overwrite the real Secret; "
                          "create it out of band and only reference it by name")
        elif d.get("kind") in WORKLOADS - {"Job"}:
            errors.append(f"{name}: the base contains {name_of(d)}: no application (demo or not) belongs in the "
                          "base; put it under k8s/examples/")
        elif is_migrations_map(d):
            errors.append(f"{name}: the base contains {name_of(d)}, a ConfigMap of migrations: migrations are baked "
                          "into the image (k8s/examples/configmap-migrations shows the ConfigMap variant)")
    if "Job" not in kinds:
        errors.append(f"{name}: the base has no migration Job")
    secrets_read: set[str] = set()
    for d, spec in workloads(docs):
        for v in spec.get("volumes") or []:
            if "configMap" in v:
                errors.append(f"{name}: {name_of(d)}: volume {v.get('name')!r} needs ConfigMap "
                              f"{v['configMap'].get('name')!r}, which the base does not provide")
            if "secret" in v:
                secrets_read.add(v["secret"].get("secretName"))
    if SECRET_NAME not in secrets_read:
        errors.append(f"{name}: the Job must read the Secret {SECRET_NAME!r} (by name; created out of band)")


# -- 5: the examples --------------------------------------------------------------------------------------------

def _containers_everywhere(docs: list[Doc]) -> Iterator[tuple[Doc, str, Doc]]:
    for d, spec in workloads(docs):
        for group, c in containers(spec):
            yield d, group, c


def _listen_port(c: Doc) -> int:
    args = [str(a) for a in c.get("args") or []]
    for i, a in enumerate(args):
        if a.startswith("--listen="):
            return int(a.rsplit(":", 1)[-1])
        if a == "--listen" and i + 1 < len(args):
            return int(args[i + 1].rsplit(":", 1)[-1])
    for e in c.get("env") or []:
        if e.get("name") == "PREMIGRATE_LISTEN":
            return int(str(e.get("value")).rsplit(":", 1)[-1])
    return SERVE_DEFAULT_PORT


def expect_initcontainer(name: str, docs: list[Doc], ctx: Doc, errors: list[str]) -> None:
    apps = [spec for d, spec in workloads(docs) if d["kind"] in ("Deployment", "StatefulSet")]
    if not apps or not all(spec.get("initContainers") and runs(spec["initContainers"][0], "up") for spec in apps):
        errors.append(f"{name}: every app workload must run `premigrate up` as its first initContainer")


def expect_serve_sidecar(name: str, docs: list[Doc], ctx: Doc, errors: list[str]) -> None:
    serving = [(d, c) for d, group, c in _containers_everywhere(docs) if runs(c, "serve")]
    if not serving:
        errors.append(f"{name}: no container runs `premigrate serve`")
        return
    for d, sidecar in serving:
        spec = pod_spec(d) or {}
        port = _listen_port(sidecar)
        apps = [c for c in spec.get("containers") or [] if c is not sidecar]
        for c in apps:
            probe = ((c.get("readinessProbe") or {}).get("httpGet") or {})
            named = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
            probe_port = named.get(probe.get("port"), probe.get("port"))
            if probe.get("path") != "/health/ready" or probe_port != port:
                errors.append(f"{name}: {name_of(d)} container {c.get('name')!r}: readinessProbe must be GET "
                              f"/health/ready on the sidecar's port {port} "
                              f"(got {probe.get('path')!r} on {probe_port!r})")
        if not apps:
            errors.append(f"{name}: {name_of(d)}: no application container beside the serve sidecar")
    if not any(d["kind"] == "Job" for d, _ in workloads(docs)):
        errors.append(f"{name}: the serve sidecar never migrates: the example needs the base's Job")


def expect_job_app_waits(name: str, docs: list[Doc], ctx: Doc, errors: list[str]) -> None:
    waits = [(d, c) for d, group, c in _containers_everywhere(docs)
             if group == "initContainers" and runs(c, "check") and "--wait" in [str(a) for a in c.get("args") or []]]
    if not waits:
        errors.append(f"{name}: no app initContainer runs `premigrate check --wait`")
    if not any(d["kind"] == "Job" for d, _ in workloads(docs)):
        errors.append(f"{name}: the app waits for a Job that is not there")


def is_migrations_map(doc: Doc) -> bool:
    return doc.get("kind") == "ConfigMap" and any(str(k).endswith(".sql") for k in doc.get("data") or {})


def expect_configmap(name: str, docs: list[Doc], ctx: Doc, errors: list[str]) -> None:
    maps = [d for d in docs if is_migrations_map(d)]
    if not maps:
        errors.append(f"{name}: no ConfigMap of migrations")
        return
    folder: Path | None = ctx.get("migrations")
    if folder is not None:
        files = {p.name: p.read_text() for p in sorted(folder.glob("*.sql"))}
        data = {k: v for k, v in (maps[0].get("data") or {}).items() if str(k).endswith(".sql")}
        if data != files:
            drift = sorted(set(data) ^ set(files) | {k for k in set(data) & set(files) if data[k] != files[k]})
            errors.append(f"{name}: the ConfigMap differs from {folder}/*.sql ({', '.join(drift)}); regenerate it: "
                          "kubectl create configmap premigrate-migrations --from-file=migrations/ "
                          "--dry-run=client -o yaml")
    cm = maps[0]["metadata"]["name"]
    mounted = False
    for _, spec in workloads(docs):
        vols = {v.get("name") for v in spec.get("volumes") or [] if (v.get("configMap") or {}).get("name") == cm}
        for _, c in containers(spec):
            mounts = c.get("volumeMounts") or []
            mounted |= any(m.get("name") in vols and m.get("mountPath") == "/migrations" for m in mounts)
    if not mounted:
        errors.append(f"{name}: ConfigMap {cm!r} is not mounted at /migrations")


def _job_annotations(docs: list[Doc]) -> list[Doc]:
    return [(d.get("metadata") or {}).get("annotations") or {} for d in docs if d.get("kind") == "Job"]


def expect_argocd(name: str, docs: list[Doc], ctx: Doc, errors: list[str]) -> None:
    for a in _job_annotations(docs) or [{}]:
        if "PreSync" not in str(a.get("argocd.argoproj.io/hook", "")) or \
                "BeforeHookCreation" not in str(a.get("argocd.argoproj.io/hook-delete-policy", "")):
            errors.append(f"{name}: the Job must be an Argo CD PreSync hook with hook-delete-policy BeforeHookCreation")


def expect_helm(name: str, docs: list[Doc], ctx: Doc, errors: list[str]) -> None:
    for a in _job_annotations(docs) or [{}]:
        hooks = {h.strip() for h in str(a.get("helm.sh/hook", "")).split(",")}
        if not {"pre-install", "pre-upgrade"} <= hooks or not a.get("helm.sh/hook-delete-policy"):
            errors.append(f"{name}: the Job must be a Helm pre-install,pre-upgrade hook with a hook-delete-policy")


EXPECTATIONS: dict[str, Callable[[str, list[Doc], Doc, list[str]], None]] = {
    "app-initcontainer": expect_initcontainer,
    "configmap-migrations": expect_configmap,
    "serve-sidecar": expect_serve_sidecar,
    "job-app-waits": expect_job_app_waits,
    "argocd": expect_argocd,
    "helm-hooks": expect_helm,
}


# -- 6: kustomizations list every file --------------------------------------------------------------------------

def check_listing(path: Path, errors: list[str], seen: set[Path]) -> None:
    """Every *.yaml beside a kustomization is listed in it; recurse into the folders it references."""
    path = path.resolve()
    if path in seen:
        return
    seen.add(path)
    base = path.parent
    data = yaml.safe_load(path.read_text()) or {}
    listed: set[Path] = set()
    refs: list[str] = list(data.get("resources") or []) + list(data.get("components") or [])
    for entry in refs:
        target = (base / entry).resolve()
        if target.is_dir():
            names = ("kustomization.yaml", "kustomization.yml")
            sub = next((target / n for n in names if (target / n).is_file()), None)
            if sub is not None:
                check_listing(sub, errors, seen)
        else:
            listed.add(target)
    for key in ("patches", "patchesStrategicMerge"):
        for entry in data.get(key) or []:
            rel = entry.get("path") if isinstance(entry, dict) else entry
            if isinstance(rel, str) and "\n" not in rel:
                listed.add((base / rel).resolve())
    for gen in (data.get("configMapGenerator") or []) + (data.get("secretGenerator") or []):
        for f in gen.get("files") or []:
            listed.add((base / str(f).rpartition("=")[2]).resolve())
    for other in sorted(base.glob("*.y*ml")):
        if other.resolve() != path and other.resolve() not in listed:
            errors.append(f"{path}: {other.name} is not listed (resources, components or patches)")


# -- main -------------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--version", required=True, help="the package version the premigrate image must be tagged with")
    ap.add_argument("--k8s-version", nargs="+", default=[kubernetes_validate.utils.latest_version() + ".0"])
    ap.add_argument("--base", help="NAME of the render that is the base")
    ap.add_argument("--migrations", type=Path, help="the folder the ConfigMap example must mirror")
    ap.add_argument("renders", nargs="+", metavar="NAME=RENDER.yaml[@SOURCE_DIR]")
    args = ap.parse_args(argv)

    errors: list[str] = []
    totals = [0, 0, 0]
    seen: set[Path] = set()
    for item in args.renders:
        name, _, rest = item.partition("=")
        render, _, source = rest.partition("@")
        try:
            docs = [d for d in yaml.safe_load_all(Path(render).read_text()) if d]
        except (OSError, yaml.YAMLError) as exc:
            errors.append(f"{name}: cannot read {render}: {exc}")
            continue
        for d in docs:
            for v in args.k8s_version:
                try:
                    kubernetes_validate.validate(d, v, strict=True)
                except kubernetes_validate.ValidationError as exc:
                    path = ".".join(str(p) for p in exc.path)
                    errors.append(f"{name}: {name_of(d)}: k8s {v} schema: {path}: {exc.message}")
                except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as exc:
                    errors.append(f"{name}: {name_of(d)}: k8s {v}: {exc}")
        w, c = check_workloads(name, docs, args.version, errors)
        totals[0] += len(docs)
        totals[1] += w
        totals[2] += c
        check_skip_reasons(name, docs, errors)
        if name == args.base:
            check_base(name, docs, errors)
        elif name in EXPECTATIONS:
            EXPECTATIONS[name](name, docs, {"migrations": args.migrations}, errors)
        if source:
            folder = Path(source)
            kust = folder / "kustomization.yaml"
            if kust.is_file():
                check_listing(kust, errors, seen)
            lines = [line for f in sorted(folder.glob("*.y*ml")) for line in f.read_text().splitlines()]
            if name != args.base and not any(line.startswith("# Pick this when:") for line in lines):
                errors.append(f"{name}: no `# Pick this when:` line in {folder}: say when to choose this example")
    for e in errors:
        print(f"k8s policy: {e}", file=sys.stderr)
    if errors:
        return 1
    print(f"   ok: k8s policy: {len(args.renders)} renders, {totals[0]} documents, {totals[1]} workloads, "
          f"{totals[2]} containers; schema-valid for k8s {', '.join(args.k8s_version)}; base has no Secret, "
          f"no app, no migrations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
