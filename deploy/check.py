#!/usr/bin/env python3
"""Checks the Kubernetes manifest against the code.

Usage: python3 deploy/check.py [MANIFEST]   (default: deploy/kubernetes/bazaar.yaml)

Reads the service names from src/cli.rs, the image's entry point from deploy/Dockerfile,
which services have a gRPC port from services/*/src/lib.rs, and whom each service calls
or reads events from (subscriptions, gRPC clients, resolver look-ups, token keys, the
gateway's route table) from the sources. Then checks that:

- every document parses and has a kind and a name, all in one namespace;
- each Deployment runs `bazaar serve <service>` for a real service (not the registry), named
  after its Deployment, with static discovery;
- HTTP and gRPC listen addresses, advertised address, container ports, probe ports and the
  ports of the Service selecting the pods agree; probes are /readyz and /livez;
- every `BAZAAR_SERVICE_<NAME>` target is `<name>.<namespace>.svc.cluster.local:<http>` with
  `+<grpc>` exactly when the service has a gRPC port, and names a headless Service with those
  ports whose selector matches the pods of the Deployment running that service;
- every service has a target for each service it needs, and URL settings (bus, processor)
  name a Service and one of its ports;
- databases come from BAZAAR_DATABASE_URL (PostgreSQL, per service), the admin password goes
  to identity only, and containers run as non-root with a read-only root file system,
  resource requests and a memory limit.

Exits 1 and lists the problems if any check fails.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

try:
    import yaml
except ImportError:  # pragma: no cover - depends on the machine
    sys.exit("check.py needs PyYAML: python3 -m pip install pyyaml")

DEPLOY = Path(__file__).resolve().parent
ROOT = DEPLOY.parent
CLUSTER_DOMAIN = "svc.cluster.local"
# The card processor is found through discovery unless BAZAAR_PSP_URL names it.
URL_SETTINGS = {"psp": "BAZAAR_PSP_URL"}
# Per service: replicas that must not be exceeded (state kept in memory).
MAX_REPLICAS = {"psp": 1}


class Problems(list):
    def add(self, where: str, message: str) -> None:
        self.append(f"{where}: {message}")


# ------------------------------------------------------------------------------------------
# What the code says
# ------------------------------------------------------------------------------------------


def without_tests(text: str) -> str:
    """Rust source without its `#[cfg(test)]` module (test code names services too)."""
    cut = text.find("#[cfg(test)]")
    return text if cut < 0 else text[:cut]


def rust_sources(service: str) -> list[str]:
    src = ROOT / "services" / service / "src"
    return [without_tests(p.read_text()) for p in sorted(src.rglob("*.rs"))]


def service_names() -> list[str]:
    cli = (ROOT / "src" / "cli.rs").read_text()
    names = re.findall(r'Self::\w+ => "([a-z-]+)"', cli)
    if not names:
        sys.exit("check.py: found no service names in src/cli.rs (ServiceName::as_str)")
    return names


def grpc_services(services: list[str]) -> set[str]:
    out = set()
    for s in services:
        lib = ROOT / "services" / s / "src" / "lib.rs"
        if lib.exists() and re.search(r"pub grpc_addr\s*:", lib.read_text()):
            out.add(s)
    return out


def entrypoint() -> list[str]:
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if line.startswith("ENTRYPOINT"):
            return json.loads(line[len("ENTRYPOINT") :].strip())
    sys.exit("check.py: deploy/Dockerfile has no ENTRYPOINT [...] line")


def needs(services: list[str]) -> dict[str, dict[str, str]]:
    """Per service: the services it needs, each with why (from the sources)."""
    events = (ROOT / "contracts" / "src" / "events.rs").read_text()
    producer_of = dict(re.findall(r'payload!\((\w+),\s*"([a-z-]+)"', events))
    serve = (ROOT / "src" / "serve.rs").read_text()
    arms = re.split(r"\n\s*ServiceName::(\w+) => \{", serve)
    jwks_users = {
        arms[i].lower() for i in range(1, len(arms) - 1, 2) if "jwks()" in arms[i + 1]
    }
    known = set(services)
    out: dict[str, dict[str, str]] = {}
    for s in services:
        deps: dict[str, str] = {}

        def add(dep: str, why: str) -> None:
            if why not in deps.get(dep, "").split(", "):
                deps[dep] = f"{deps[dep]}, {why}" if dep in deps else why

        if s in jwks_users:
            add("identity", "token keys (JWKS)")
        for text in rust_sources(s) if (ROOT / "services" / s).exists() else []:
            for p in re.findall(r'producer:\s*"([a-z-]+)"', text):
                add(p, "event producer (feeds)")
            for ty in re.findall(r"producer:\s*(\w+)::SERVICE", text):
                if ty in producer_of:
                    add(producer_of[ty], "event producer (feeds)")
            for p in re.findall(r'(?:ServiceChannels|Dependency)::new\(\s*"([a-z-]+)"', text):
                add(p, "gRPC")
            consts = dict(re.findall(r'const (\w+): &str = "([a-z-]+)";', text))
            for arg in re.findall(r"\.resolve\(\s*(\w+|\"[a-z-]+\")\s*\)", text):
                target = arg.strip('"') if arg.startswith('"') else consts.get(arg)
                if target in known and target != s:
                    add(target, "HTTP")
            if s == "gateway":
                for p in re.findall(r'Route::new\(\s*"[^"]*",\s*"([a-z-]+)"', text):
                    add(p, "route")
                ops = re.search(r"OPS_SERVICES: &\[&str\] = &\[(.*?)\];", text, re.S)
                for p in re.findall(r'"([a-z-]+)"', ops.group(1) if ops else ""):
                    add(p, "dead letters")
        deps.pop("registry", None)
        out[s] = {d: why for d, why in deps.items() if d in known}
    if not out.get("gateway"):
        sys.exit("check.py: found no upstreams of the gateway in its sources")
    return out


# ------------------------------------------------------------------------------------------
# The manifest
# ------------------------------------------------------------------------------------------


class StrictLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping, as kubectl does (PyYAML
    would silently keep the last one)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load(path: Path, problems: Problems) -> list[dict]:
    try:
        docs = [d for d in yaml.load_all(path.read_text(), Loader=StrictLoader) if d is not None]
    except yaml.YAMLError as e:
        problems.add(str(path), f"not valid YAML: {e}")
        return []
    for i, d in enumerate(docs):
        if not isinstance(d, dict) or not d.get("kind") or not (d.get("metadata") or {}).get("name"):
            problems.add(f"document {i + 1}", "has no kind or metadata.name")
    return [d for d in docs if isinstance(d, dict) and d.get("kind")]


def name_of(doc: dict) -> str:
    return f"{doc['kind']}/{doc.get('metadata', {}).get('name')}"


def container_env(c: dict, configmaps: dict[str, dict], where: str, problems: Problems) -> dict[str, str]:
    """The container's environment as Kubernetes builds it: ConfigMaps first, then `env`
    with `$(VAR)` expanded; values from the downward API or Secrets become `<…>`."""
    env: dict[str, str] = {}
    for src in c.get("envFrom") or []:
        ref = (src.get("configMapRef") or {}).get("name")
        if ref is not None:
            if ref not in configmaps:
                problems.add(where, f"envFrom names ConfigMap {ref}, which is not in the manifest")
            env.update({k: str(v) for k, v in (configmaps.get(ref) or {}).items()})
    for e in c.get("env") or []:
        if "value" in e:
            value = str(e["value"])
            for var in re.findall(r"\$\((\w+)\)", value):
                if var not in env:
                    problems.add(where, f"{e['name']} uses $({var}), which is not defined before it")
                value = value.replace(f"$({var})", env.get(var, ""))
            env[e["name"]] = value
        elif "valueFrom" in e:
            vf = e["valueFrom"]
            if "fieldRef" in vf:
                env[e["name"]] = f"<{vf['fieldRef']['fieldPath']}>"
            elif "secretKeyRef" in vf:
                ref = vf["secretKeyRef"]
                env[e["name"]] = f"<secret {ref['name']}/{ref['key']}>"
            else:
                env[e["name"]] = "<ref>"
    return env


def port_of(addr: str) -> int | None:
    m = re.fullmatch(r".*:(\d+)", addr)
    return int(m.group(1)) if m else None


def resolve_port(port, container_ports: dict[str, int]) -> int | None:
    if isinstance(port, int):
        return port if port in container_ports.values() else None
    return container_ports.get(port)


def truthy(v: str | None) -> bool:
    return (v or "").lower() in {"true", "1", "yes", "on"}


def main() -> int:
    manifest = Path(sys.argv[1]) if len(sys.argv) > 1 else DEPLOY / "kubernetes" / "bazaar.yaml"
    problems = Problems()
    services = service_names()
    grpc = grpc_services(services)
    entry = entrypoint()
    needed = needs(services)
    docs = load(manifest, problems)
    if problems:
        print(f"{manifest}: {problems[0]}")
        return 1

    namespaces = {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"}
    declared = {d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"}
    if len(namespaces) != 1 or None in namespaces:
        problems.add("manifest", f"objects must all name one namespace, found {sorted(map(str, namespaces))}")
    namespace = next(iter(namespaces)) if namespaces else None
    if namespace not in declared:
        problems.add("manifest", f"namespace {namespace} is used but no Namespace declares it")

    configmaps = {d["metadata"]["name"]: d.get("data") or {} for d in docs if d["kind"] == "ConfigMap"}
    svcs = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    workloads = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]

    # Pods: (labels, container ports by name) per workload.
    pods = {}
    for w in workloads:
        tmpl = w["spec"]["template"]
        labels = tmpl["metadata"].get("labels") or {}
        selector = w["spec"].get("selector", {}).get("matchLabels") or {}
        if any(labels.get(k) != v for k, v in selector.items()):
            problems.add(name_of(w), "selector does not match the pod template's labels")
        ports = {}
        for c in tmpl["spec"]["containers"]:
            for p in c.get("ports") or []:
                ports[p.get("name") or str(p["containerPort"])] = p["containerPort"]
        pods[name_of(w)] = (labels, ports)

    def selected(svc: dict) -> list[str]:
        sel = svc["spec"].get("selector") or {}
        return [w for w, (labels, _) in pods.items() if sel and all(labels.get(k) == v for k, v in sel.items())]

    # Every Service selects pods that have its target ports.
    for name, svc in svcs.items():
        chosen = selected(svc)
        if not chosen:
            problems.add(f"Service/{name}", "selects no workload in the manifest")
        for w in chosen:
            for p in svc["spec"].get("ports") or []:
                target = p.get("targetPort", p["port"])
                if resolve_port(target, pods[w][1]) is None:
                    problems.add(f"Service/{name}", f"port {p['port']} targets {target}, which {w} does not expose")

    def service_port(host_service: str, port: int) -> int | None:
        """The container port behind `port` of Service `host_service` (headless: the same)."""
        svc = svcs.get(host_service)
        if svc is None:
            return None
        for p in svc["spec"].get("ports") or []:
            if p["port"] == port:
                return port
        return None

    # What each Service's pods run, for checking targets against the right service.
    runs: dict[str, str] = {}
    targets: list[tuple] = []
    deployments = [d for d in workloads if d["kind"] == "Deployment"]
    for d in deployments:
        where = name_of(d)
        spec = d["spec"]["template"]["spec"]
        containers = spec["containers"]
        if len(containers) != 1:
            problems.add(where, "expected exactly one container")
        c = containers[0]
        argv = (c.get("command") or entry) + (c.get("args") or [])
        if len(argv) < 3 or Path(argv[0]).name != "bazaar" or argv[1] != "serve":
            problems.add(where, f"does not run `bazaar serve <service>`: {argv}")
            continue
        svc = argv[2]
        if svc not in services:
            problems.add(where, f"`{svc}` is not a service (known: {', '.join(services)})")
            continue
        if svc == "registry":
            problems.add(where, "the registry is not needed with static discovery")
        if d["metadata"]["name"] != svc:
            problems.add(where, f"runs {svc}; name the Deployment after it")
        runs[d["metadata"]["name"]] = svc
        env = container_env(c, configmaps, where, problems)
        if "--static-discovery" not in argv and not truthy(env.get("BAZAAR_STATIC_DISCOVERY")):
            problems.add(where, "does not use --static-discovery")
        if svc in MAX_REPLICAS and d["spec"].get("replicas", 1) > MAX_REPLICAS[svc]:
            problems.add(where, f"{svc} keeps state in memory: at most {MAX_REPLICAS[svc]} replica")

        # Ports.
        ports = pods[where][1]
        http = port_of(env.get("BAZAAR_ADDR", ""))
        if http is None or not env.get("BAZAAR_ADDR", "").startswith("0.0.0.0:"):
            problems.add(where, f"BAZAAR_ADDR must be 0.0.0.0:<port>, is {env.get('BAZAAR_ADDR')!r}")
        elif ports.get("http") != http:
            problems.add(where, f"containerPort `http` {ports.get('http')} is not BAZAAR_ADDR's port {http}")
        grpc_addr = env.get("BAZAAR_GRPC_ADDR")
        if svc in grpc:
            gport = port_of(grpc_addr or "")
            if gport is None or not grpc_addr.startswith("0.0.0.0:"):
                problems.add(where, f"{svc} serves gRPC: BAZAAR_GRPC_ADDR must be 0.0.0.0:<port>")
            elif ports.get("grpc") != gport:
                problems.add(where, f"containerPort `grpc` {ports.get('grpc')} is not BAZAAR_GRPC_ADDR's port {gport}")
        elif grpc_addr or "grpc" in ports:
            problems.add(where, f"{svc} has no gRPC API but sets a gRPC address or port")
        adv = env.get("BAZAAR_ADVERTISE_ADDR", "")
        if not adv.startswith("<status.podIP>:") or port_of(adv) != http:
            problems.add(where, f"BAZAAR_ADVERTISE_ADDR must be the pod IP and port {http}, is {adv!r}")
        if env.get("BAZAAR_INSTANCE_ID") != "<metadata.name>":
            problems.add(where, "BAZAAR_INSTANCE_ID must be the pod name (metadata.name)")
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/livez")):
            get = (c.get(probe) or {}).get("httpGet") or {}
            if get.get("path") != path:
                problems.add(where, f"{probe} must GET {path}")
            if resolve_port(get.get("port"), ports) != http:
                problems.add(where, f"{probe} does not probe the HTTP port {http}")

        # Database, secrets.
        db = env.get("BAZAAR_DATABASE_URL")
        if svc == "gateway":
            if db:
                problems.add(where, "the gateway has no database")
        elif not db or not db.startswith("postgres://") or not (
            db.endswith("bazaar_{service}") or db.endswith(f"bazaar_{svc}")
        ):
            problems.add(where, f"BAZAAR_DATABASE_URL must be a PostgreSQL database of its own, is {db!r}")
        admin = "BAZAAR_ADMIN_PASSWORD" in env or "bazaar-admin" in json.dumps(c.get("env") or [])
        if admin != (svc == "identity"):
            problems.add(where, "the admin password Secret must go to identity, and only there")

        # Hardening and resources.
        pod_sc = spec.get("securityContext") or {}
        sc = c.get("securityContext") or {}
        if not (sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))):
            problems.add(where, "must run as non-root (runAsNonRoot)")
        if not sc.get("readOnlyRootFilesystem"):
            problems.add(where, "root file system should be read-only")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.add(where, "allowPrivilegeEscalation must be false")
        res = c.get("resources") or {}
        if not (res.get("requests") or {}).get("memory") or not (res.get("limits") or {}).get("memory"):
            problems.add(where, "needs a memory request and a memory limit")

        # Discovery targets.
        have = set()
        for key, value in env.items():
            if not key.startswith("BAZAAR_SERVICE_") or key == "BAZAAR_SERVICE_":
                continue
            target = key[len("BAZAAR_SERVICE_") :].lower().replace("_", "-")
            have.add(target)
            if target not in services:
                problems.add(where, f"{key}: `{target}` is not a service")
            for addr in [a.strip() for a in value.split(",") if a.strip()]:
                m = re.fullmatch(r"([a-z0-9.-]+):(\d+)(?:\+(\d+))?", addr)
                if not m:
                    problems.add(where, f"{key}: `{addr}` is not host:port[+grpc_port]")
                    continue
                host, hport, gport = m.group(1), int(m.group(2)), m.group(3)
                expected_host = f"{target}.{namespace}.{CLUSTER_DOMAIN}"
                if host != expected_host:
                    problems.add(where, f"{key}: host {host} should be {expected_host}")
                svc_doc = svcs.get(host.split(".")[0])
                if svc_doc is None:
                    problems.add(where, f"{key}: no Service {host.split('.')[0]}")
                    continue
                if svc_doc["spec"].get("clusterIP") != "None":
                    problems.add(where, f"{key}: Service {host.split('.')[0]} must be headless (clusterIP: None)")
                if service_port(host.split(".")[0], hport) is None:
                    problems.add(where, f"{key}: Service {host.split('.')[0]} has no port {hport}")
                if target in grpc and gport is None:
                    problems.add(where, f"{key}: {target} serves gRPC; add +<grpc port>")
                if gport is not None:
                    if target not in grpc:
                        problems.add(where, f"{key}: {target} has no gRPC API; drop +{gport}")
                    elif service_port(host.split(".")[0], int(gport)) is None:
                        problems.add(where, f"{key}: Service {host.split('.')[0]} has no port {gport}")
                targets.append((where, key, target, svc_doc, hport, gport))
        for dep, why in sorted(needed.get(svc, {}).items()):
            if dep in have or (dep in URL_SETTINGS and env.get(URL_SETTINGS[dep])):
                continue
            problems.add(where, f"needs {dep} ({why}): set BAZAAR_SERVICE_{dep.upper().replace('-', '_')}")
        for extra in sorted(have - set(needed.get(svc, {}))):
            print(f"note: {where} names {extra}, which the code does not show it needs")

        # URL settings name a Service and one of its ports.
        for key in ("BAZAAR_PSP_URL", "BAZAAR_BUS"):
            url = env.get(key)
            if not url or url == "feeds":
                continue
            parts = urlsplit(url)
            host = (parts.hostname or "").split(".")[0]
            if host not in svcs:
                problems.add(where, f"{key} {url}: no Service {host}")
            elif parts.port is None or service_port(host, parts.port) is None:
                problems.add(where, f"{key} {url}: Service {host} has no port {parts.port}")

    # Each target's Service runs the service it is named for, with these ports.
    for where, key, target, svc_doc, hport, gport in targets:
        behind = [runs.get(w.split("/", 1)[1], w) for w in selected(svc_doc)]
        if behind != [target]:
            problems.add(where, f"{key}: its Service selects {', '.join(behind) or 'nothing'}, not the Deployment running {target}")
            continue
        _, ports = pods[f"Deployment/{target}"]
        if ports.get("http") != hport:
            problems.add(where, f"{key}: {target} listens for HTTP on {ports.get('http')}, not {hport}")
        if gport is not None and ports.get("grpc") != int(gport):
            problems.add(where, f"{key}: {target} listens for gRPC on {ports.get('grpc')}, not {gport}")

    # A nats:// bus needs a JetStream server behind its Service.
    for url in {cm.get("BAZAAR_BUS") for cm in configmaps.values()} - {None, "feeds"}:
        host = urlsplit(url).hostname
        for w in selected(svcs[host]) if host in svcs else []:
            doc = next(x for x in workloads if name_of(x) == w)
            args = doc["spec"]["template"]["spec"]["containers"][0].get("args") or []
            if not {"-js", "--jetstream"} & set(args):
                problems.add(w, f"serves {url} but does not enable JetStream (-js)")

    running = sorted(runs.values())
    missing = sorted(set(services) - {"registry"} - set(running))
    if missing:
        problems.add("manifest", f"no Deployment runs {', '.join(missing)}")

    if problems:
        print(f"{manifest}: {len(problems)} problem(s)")
        for p in problems:
            print(f"  - {p}")
        return 1
    print(
        f"{manifest}: OK: {len(docs)} documents, {len(deployments)} Deployments "
        f"({', '.join(running)}), gRPC on {', '.join(sorted(grpc))}"
    )
    for svc in running:
        deps = ", ".join(f"{d} [{why}]" for d, why in sorted(needed.get(svc, {}).items())) or "none"
        print(f"  {svc} needs: {deps}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
