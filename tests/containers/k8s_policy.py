#!/usr/bin/env python3
"""Policy check for the Kubernetes manifests under k8s/ (run by tests/containers/check.sh).

kubernetes-validate has no schema for a kustomize Kustomization and cannot express policy, so this script:

1. reads kustomization.yaml and checks that every `resources:` entry (file, or folder with its own
   kustomization.yaml) and every patch file exists, and that every *.yaml beside it is listed;
2. validates every document of every listed file against the Kubernetes OpenAPI schema (strict: unknown
   fields are errors) for each requested Kubernetes version;
3. checks every container (initContainers and containers) of every workload (Pod, Deployment, StatefulSet,
   DaemonSet, ReplicaSet, Job, CronJob) for:
   - securityContext: runAsNonRoot true, runAsUser 10001, readOnlyRootFilesystem true,
     allowPrivilegeEscalation false, capabilities.drop [ALL] (and no capabilities.add),
     seccompProfile.type RuntimeDefault, all set on the container itself;
   - resources.requests and resources.limits, each with cpu and memory;
   - terminationMessagePolicy FallbackToLogsOnError;
   - an emptyDir volume mounted at /tmp (the root file system is read-only);
   and every Job for restartPolicy Never, backoffLimit and ttlSecondsAfterFinished.

Usage: k8s_policy.py [--k8s-version 1.28.0 1.37.0 ...] [--] k8s/kustomization.yaml
Exit 0 when everything passes, 1 with one line per violation otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

try:
    import kubernetes_validate
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


def load_kustomization(path: Path, errors: list[str], seen: set[Path]) -> list[Path]:
    """Return the manifest files a kustomization pulls in (recursing into folder resources)."""
    path = path.resolve()
    if path in seen:
        return []
    seen.add(path)
    base = path.parent
    data = yaml.safe_load(path.read_text()) or {}
    if data.get("kind", "Kustomization") not in ("Kustomization", "Component"):
        errors.append(f"{path}: kind is {data.get('kind')!r}, expected Kustomization")
    files: list[Path] = []
    for entry in data.get("resources") or []:
        if "://" in entry or entry.startswith(("github.com/", "git@")):
            errors.append(f"{path}: remote resource {entry!r} cannot be checked offline")
            continue
        target = base / entry
        if target.is_dir():
            sub = next((target / n for n in ("kustomization.yaml", "kustomization.yml", "Kustomization")
                        if (target / n).is_file()), None)
            if sub is None:
                errors.append(f"{path}: resource folder {entry!r} has no kustomization.yaml")
            else:
                files += load_kustomization(sub, errors, seen)
        elif target.is_file():
            files.append(target.resolve())
        else:
            errors.append(f"{path}: resource {entry!r} does not exist")
    for key in ("patches", "patchesStrategicMerge", "components"):
        for entry in data.get(key) or []:
            rel = entry.get("path") if isinstance(entry, dict) else entry
            if isinstance(rel, str) and "\n" not in rel and not (base / rel).exists():
                errors.append(f"{path}: {key} entry {rel!r} does not exist")
    listed = {f for f in files if f.parent == base}
    for other in sorted(base.glob("*.y*ml")):
        if other.resolve() != path and other.resolve() not in listed:
            errors.append(f"{path}: {other.name} is not listed under resources:")
    return files


def pod_spec(doc: dict) -> dict | None:
    kind, spec = doc.get("kind"), doc.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        return (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec")
    return (spec.get("template") or {}).get("spec")


def check_container(where: str, c: dict, volumes: dict, errors: list[str]) -> None:
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
    if not c.get("image"):
        errors.append(f"{where}: no image")


def check_workload(where: str, doc: dict, errors: list[str]) -> int:
    spec = pod_spec(doc)
    if not spec:
        errors.append(f"{where}: no pod template")
        return 0
    volumes = {v.get("name"): v for v in spec.get("volumes") or []}
    containers = [("initContainers", c) for c in spec.get("initContainers") or []]
    containers += [("containers", c) for c in spec.get("containers") or []]
    for group, c in containers:
        check_container(f"{where} {group}[{c.get('name')}]", c, volumes, errors)
    if doc["kind"] in ("Job", "CronJob"):
        job = doc["spec"] if doc["kind"] == "Job" else doc["spec"]["jobTemplate"]["spec"]
        if spec.get("restartPolicy") != "Never":
            errors.append(f"{where}: restartPolicy must be Never (got {spec.get('restartPolicy')!r})")
        for key in ("backoffLimit", "ttlSecondsAfterFinished"):
            if job.get(key) is None:
                errors.append(f"{where}: spec.{key} is missing")
    return len(containers)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--k8s-version", nargs="+", default=[kubernetes_validate.utils.latest_version() + ".0"])
    ap.add_argument("kustomization", type=Path)
    args = ap.parse_args(argv)

    errors: list[str] = []
    if not args.kustomization.is_file():
        print(f"{args.kustomization}: not found", file=sys.stderr)
        return 1
    files = load_kustomization(args.kustomization, errors, set())
    n_docs = n_workloads = n_containers = 0
    for f in files:
        try:
            docs = [d for d in yaml.safe_load_all(f.read_text()) if d]
        except yaml.YAMLError as exc:
            errors.append(f"{f.name}: invalid YAML: {exc}")
            continue
        for d in docs:
            n_docs += 1
            where = f"{f.name}: {d.get('kind')}/{(d.get('metadata') or {}).get('name')}"
            for v in args.k8s_version:
                try:
                    kubernetes_validate.validate(d, v, strict=True)
                except kubernetes_validate.ValidationError as exc:
                    path = ".".join(str(p) for p in exc.path)
                    errors.append(f"{where}: k8s {v} schema: {path}: {exc.message}")
                except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as exc:
                    errors.append(f"{where}: k8s {v}: {exc}")
            if d.get("kind") in WORKLOADS:
                n_workloads += 1
                n_containers += check_workload(where, d, errors)
    if not n_workloads:
        errors.append(f"{args.kustomization}: no workloads found")
    for e in errors:
        print(f"k8s policy: {e}", file=sys.stderr)
    if errors:
        return 1
    print(f"   ok: k8s policy: {len(files)} files, {n_docs} documents, {n_workloads} workloads, "
          f"{n_containers} containers; schema-valid for k8s {', '.join(args.k8s_version)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
