"""Checks deploy/ (part of `make test`, SHAPE-6 and OPS-5):

- both Kubernetes overlays render (scripts/deploy/kustomize.py) and every resource validates
  against the Kubernetes schemas (kubernetes-validate, strict: unknown fields are errors) of the
  oldest and newest versions we support; CloudNativePG's resources, which it has no schema for,
  are checked for the fields Rampart relies on;
- every service has probes on its health endpoints, resources, a restricted securityContext, a
  PodDisruptionBudget, its NATS user and its secrets; only the gateway takes ingress, and only
  from the ingress controller's namespace, whose addresses (no wider than an IPv4 /16 or IPv6
  /48) are the only trusted proxies (issue 26, finding 7);
- the Dockerfile builds every service and installs each C library its executable links
  (read with ldd from the executables `make test` built), no more guessing;
- compose.yaml runs every service hardened the same way;
- the NATS chart's values include the shipped authorization and give every user a password.

Exit status 1 with every problem listed, 0 when none.
"""

import glob
import ipaddress
import os
import re
import subprocess
import sys

import kubernetes_validate
import yaml

sys.path.insert(0, os.path.dirname(__file__))
import kustomize  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
SERVICES = ["auth", "tenants", "permissions", "audit", "rate-limit", "webhooks", "gateway", "mail"]
WITH_DATABASE = {"auth", "tenants", "permissions", "audit", "webhooks"}
# The keys a service refuses to start without (docs/configuration.md).
REQUIRED_SECRETS = {
    "auth": ["RAMPART_AUTH_KEY_ENCRYPTION_KEYS", "RAMPART_MAIL_TOKEN_PUBLIC_KEY"],
    "tenants": ["RAMPART_MAIL_TOKEN_PUBLIC_KEY"],
    "audit": ["RAMPART_AUDIT_SIGNING_KEY"],
    "webhooks": ["RAMPART_WEBHOOKS_KEY_ENCRYPTION_KEYS"],
    "mail": ["RAMPART_MAIL_SMTP_URL", "RAMPART_MAIL_TOKEN_KEYS"],
}
KUBERNETES_VERSIONS = ["1.30", kubernetes_validate.latest_version()]
# In debian:bookworm-slim already (required packages, or apt's own dependencies).
BASE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6", "libcrypt1", "zlib1g"}

problems = []


def problem(message):
    problems.append(message)


def path(*parts):
    return os.path.join(ROOT, *parts)


def find(resources, kind, name):
    found = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    return found[0] if found else None


def check_cloudnativepg(resource, resources, where):
    spec = resource.get("spec", {})
    if resource["apiVersion"] != "postgresql.cnpg.io/v1":
        problem(f"{where}: apiVersion {resource['apiVersion']} is not postgresql.cnpg.io/v1")
    if resource["kind"] == "Cluster":
        if not isinstance(spec.get("instances"), int) or spec["instances"] < 1:
            problem(f"{where}: instances must be a positive integer")
        if "size" not in spec.get("storage", {}):
            problem(f"{where}: storage.size is missing")
        initdb = spec.get("bootstrap", {}).get("initdb", {})
        if not {"database", "owner", "secret"} <= set(initdb):
            problem(f"{where}: bootstrap.initdb needs database, owner and secret")
        for role in spec.get("managed", {}).get("roles", []):
            if not role.get("login") or "passwordSecret" not in role:
                problem(f"{where}: managed role {role.get('name')} needs login and a passwordSecret")
    elif resource["kind"] == "Database":
        cluster = find(resources, "Cluster", spec.get("cluster", {}).get("name"))
        if cluster is None:
            problem(f"{where}: names cluster {spec.get('cluster')}, which is not deployed")
            return
        owners = {r["name"] for r in cluster["spec"].get("managed", {}).get("roles", [])}
        owners.add(cluster["spec"]["bootstrap"]["initdb"]["owner"])
        if spec.get("owner") not in owners:
            problem(f"{where}: owner {spec.get('owner')} is not a role of the cluster")
    else:
        problem(f"{where}: unexpected CloudNativePG kind")


def check_pod(spec, where):
    pod = spec.get("securityContext", {})
    if pod.get("runAsNonRoot") is not True or pod.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problem(f"{where}: the pod must run as non-root with the RuntimeDefault seccomp profile")
    if spec.get("automountServiceAccountToken") is not False:
        problem(f"{where}: no service account token: Rampart calls no Kubernetes API")
    for container in spec["containers"]:
        context = container.get("securityContext", {})
        if not (
            context.get("readOnlyRootFilesystem") is True
            and context.get("allowPrivilegeEscalation") is False
            and context.get("runAsNonRoot") is True
            and context.get("capabilities", {}).get("drop") == ["ALL"]
            and not context.get("capabilities", {}).get("add")
            and not context.get("privileged")
        ):
            problem(f"{where}: container {container['name']} must be read-only, non-root, unprivileged, with every capability dropped")
        resources = container.get("resources", {})
        if not {"cpu", "memory"} <= set(resources.get("requests", {})) or "memory" not in resources.get("limits", {}):
            problem(f"{where}: container {container['name']} needs CPU and memory requests and a memory limit")


def env_of(container):
    return {entry["name"]: entry for entry in container.get("env", [])}


def check_service(service, resources, where):
    deployment = find(resources, "Deployment", service)
    if deployment is None:
        problem(f"{where}: no Deployment for {service}")
        return
    spec = deployment["spec"]["template"]["spec"]
    check_pod(spec, f"{where} Deployment {service}")
    (container,) = spec["containers"]
    if not re.search(rf"(^|/)rampart/{re.escape(service)}(:|$)", container["image"]):
        problem(f"{where}: {service} runs image {container['image']}")
    ports = {port["name"]: port["containerPort"] for port in container.get("ports", [])}
    if ports.get("ops") != 9100:
        problem(f"{where}: {service}'s ops port must be 9100 (the image's RAMPART_OPS_PORT)")
    for probe, endpoint in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")]:
        get = container.get(probe, {}).get("httpGet", {})
        if get.get("path") != endpoint or get.get("port") not in ("ops", 9100):
            problem(f"{where}: {service}'s {probe} must GET {endpoint} on the ops port")
    env = env_of(container)
    if env.get("RAMPART_NATS_USER", {}).get("value") != service:
        problem(f"{where}: {service} must connect to NATS as user {service}")
    for variable in ["RAMPART_NATS_PASSWORD"] + REQUIRED_SECRETS.get(service, []) + (["RAMPART_POSTGRES_PASSWORD"] if service in WITH_DATABASE else []):
        if "secretKeyRef" not in env.get(variable, {}).get("valueFrom", {}):
            problem(f"{where}: {service}'s {variable} must come from a Secret")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    if (labels.get("rampart.dev/database") == "true") != (service in WITH_DATABASE):
        problem(f"{where}: {service} {'needs' if service in WITH_DATABASE else 'must not have'} the database label (PostgreSQL egress)")
    selector = deployment["spec"]["selector"]["matchLabels"]
    budgets = [r for r in resources if r["kind"] == "PodDisruptionBudget" and r["spec"]["selector"]["matchLabels"] == selector]
    if len(budgets) != 1:
        problem(f"{where}: {service} needs one PodDisruptionBudget")
    autoscaler = find(resources, "HorizontalPodAutoscaler", service)
    if (autoscaler is not None) != (service in ("gateway", "auth")):
        problem(f"{where}: gateway and auth scale by HorizontalPodAutoscaler, the others by replicas")


# X-Forwarded-For is believed from these: a whole private range would let any pod forge it.
WIDEST_TRUSTED_PROXY = {4: 16, 6: 48}


def check_trusted_proxies(config, where):
    value = config.get("data", {}).get("RAMPART_GATEWAY_TRUSTED_PROXIES", "")
    if not value.strip():
        problem(f"{where}: RAMPART_GATEWAY_TRUSTED_PROXIES is not set: the ingress controller's addresses, or clients' addresses are the controller's")
    for entry in filter(None, (part.strip() for part in value.split(","))):
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            problem(f"{where}: RAMPART_GATEWAY_TRUSTED_PROXIES: {entry!r} is not an address or network")
            continue
        if network.prefixlen < WIDEST_TRUSTED_PROXY[network.version]:
            problem(f"{where}: RAMPART_GATEWAY_TRUSTED_PROXIES trusts {entry}, wider than /{WIDEST_TRUSTED_PROXY[network.version]}: trust the ingress controller alone")


def check_gateway_ingress(policies, where):
    """The gateway's port is open to the ingress controller's pods only, never to anyone."""
    for policy in policies:
        if policy["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name") != "gateway":
            continue
        for rule in policy["spec"].get("ingress", []):
            peers = rule.get("from", [])
            if not peers or any("namespaceSelector" not in peer or "ipBlock" in peer for peer in peers):
                problem(f"{where}: NetworkPolicy {policy['metadata']['name']} admits the gateway's port from more than the ingress controller's namespace")


def self_test():
    """Each rule once against what it must refuse, so a rule that stopped refusing shows here."""
    global problems
    kept, problems = problems, []
    check_trusted_proxies({"data": {"RAMPART_GATEWAY_TRUSTED_PROXIES": "10.0.0.0/8"}}, "self-test")
    check_trusted_proxies({"data": {"RAMPART_GATEWAY_TRUSTED_PROXIES": "2001:db8::/32"}}, "self-test")
    check_trusted_proxies({"data": {}}, "self-test")
    open_gateway = {"metadata": {"name": "open"}, "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "gateway"}},
                                                           "ingress": [{"ports": [{"port": 8080}]}]}}
    check_gateway_ingress([open_gateway], "self-test")
    caught, problems = problems, kept
    if len(caught) != 4:
        problem(f"self-test: the deploy check's own rules refused {len(caught)} of 4 bad manifests: {caught}")


def check_network(resources, where):
    policies = [r for r in resources if r["kind"] == "NetworkPolicy"]
    deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/part-of": "rampart"}}
        and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    if not deny:
        problem(f"{where}: no default-deny NetworkPolicy for every Rampart pod")
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            if "from" not in rule and policy["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/name") != "gateway":
                problem(f"{where}: NetworkPolicy {policy['metadata']['name']} lets anyone in to something other than the gateway")
    check_gateway_ingress(policies, where)
    config = find(resources, "ConfigMap", "rampart-config")
    if config is None:
        problem(f"{where}: no ConfigMap rampart-config")
    else:
        check_trusted_proxies(config, where)
    services = [r["metadata"]["name"] for r in resources if r["kind"] == "Service"]
    if services != ["gateway"]:
        problem(f"{where}: only the gateway has a Service, not {services}")


def check_kubernetes():
    for overlay in ["dev", "production"]:
        where = f"deploy/k8s/overlays/{overlay}"
        try:
            resources = kustomize.build(path("deploy", "k8s", "overlays", overlay))
        except kustomize.KustomizeError as error:
            problem(f"{where}: {error}")
            continue
        for resource in resources:
            name = f"{where}: {resource['kind']} {resource['metadata']['name']}"
            if resource["apiVersion"].startswith("postgresql.cnpg.io/"):
                check_cloudnativepg(resource, resources, name)
                continue
            for version in KUBERNETES_VERSIONS:
                try:
                    kubernetes_validate.validate(resource, version, strict=True)
                except kubernetes_validate.ValidationError as error:
                    problem(f"{name} (Kubernetes {version}): {error.message} at {'/'.join(map(str, error.path))}")
                except kubernetes_validate.SchemaNotFoundError as error:
                    problem(f"{name} (Kubernetes {version}): {error}")
        for service in SERVICES:
            check_service(service, resources, where)
        check_network(resources, where)
        backup = find(resources, "CronJob", "rampart-backup")
        if backup is None:
            problem(f"{where}: no backup CronJob (OPS-2)")
        else:
            check_pod(backup["spec"]["jobTemplate"]["spec"]["template"]["spec"], f"{where} CronJob rampart-backup")
        readme = open(path("README.md")).read()
        for secret in sorted(secret_names(resources)):
            if f"`{secret}`" not in readme:
                problem(f"{where}: Secret {secret} is not described in the README's Deploying section")


def secret_names(node):
    """Every Secret a resource names: secretKeyRef (env), passwordSecret and secret (CloudNativePG)."""
    names = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("secretKeyRef", "passwordSecret", "secret") and isinstance(value, dict) and "name" in value:
                names.add(value["name"])
            names |= secret_names(value)
    elif isinstance(node, list):
        for item in node:
            names |= secret_names(item)
    return names


def linked_packages(executable):
    """The Debian packages of the shared libraries `executable` links, outside Swift's toolchain."""
    output = subprocess.run(["ldd", executable], capture_output=True, text=True, check=True).stdout
    packages = set()
    for match in re.finditer(r"=> (/\S+)", output):
        library = match.group(1)
        if "/swift" in library or "/.build/" in library:
            continue  # Swift's runtime: linked in statically by --static-swift-stdlib
        for candidate in (library, "/usr" + library):
            owner = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
            if owner.returncode == 0:
                packages.add(owner.stdout.split(":")[0])
                break
        else:
            problem(f"{executable}: no Debian package holds {library}")
    return packages


def check_dockerfile():
    text = open(path("deploy", "docker", "Dockerfile")).read()
    build_case = re.search(r'case "\$\{SERVICE\}" in \\\n\s+([a-z|-]+)\)', text)
    named = set(build_case.group(1).split("|")) if build_case else set()
    if named != set(SERVICES) | {"backup"}:
        problem(f"Dockerfile: SERVICE accepts {sorted(named)}, not the seven services and backup")
    common = re.search(r'packages="([^"$]+)"', text)
    installed_everywhere = set(common.group(1).split()) if common else set()
    extra = {service: set(more.split()) for service, more in re.findall(r'(\S+)\) packages="\$packages ([^"]+)"', text)}
    if "ca-certificates" not in installed_everywhere:
        problem("Dockerfile: the runtime image needs ca-certificates (webhooks and OIDC over TLS)")
    binaries = path(".build", "debug")
    for image, executables in [(s, [s]) for s in SERVICES] + [("backup", ["rampart-backup", "rampart-restore"])]:
        installed = installed_everywhere | extra.get(image, set())
        for executable in executables:
            location = os.path.join(binaries, executable)
            if not os.path.exists(location):
                problem(f"Dockerfile: {location} is not built (make test builds it)")
                continue
            missing = linked_packages(location) - installed - BASE_PACKAGES
            if missing:
                problem(f"Dockerfile: the {image} image lacks {sorted(missing)}, which {executable} links")
    if not any(p.startswith("postgresql-client") for p in extra.get("backup", set())):
        problem("Dockerfile: the backup image needs PostgreSQL's client tools (pg_dump, pg_restore, psql)")
    if not re.search(r"^USER 10001", text, re.MULTILINE) or "useradd --system --uid 10001" not in text:
        problem("Dockerfile: the runtime image must run as the unprivileged user 10001")
    # A service's resources (the gateway's OpenAPI document) are read from beside its executable.
    for bundle in sorted(glob.glob(os.path.join(binaries, "*.resources"))):
        name = os.path.basename(bundle)
        if name.split("_")[0] in SERVICES and '"$bin/${product}_"*.resources' not in text:
            problem(f"Dockerfile: the image does not copy {name}, which its service reads at start")
    if "--static-swift-stdlib" not in text:
        problem("Dockerfile: the release build must link Swift's runtime statically (the runtime image has none)")


def check_compose():
    compose = yaml.safe_load(open(path("deploy", "compose.yaml")))
    services = compose["services"]
    for service in SERVICES:
        definition = services.get(service)
        if definition is None:
            problem(f"compose.yaml: no {service}")
            continue
        if definition.get("build", {}).get("args", {}).get("SERVICE") != service:
            problem(f"compose.yaml: {service} is not built with SERVICE={service}")
        if not (
            definition.get("read_only") is True
            and definition.get("cap_drop") == ["ALL"]
            and "no-new-privileges:true" in definition.get("security_opt", [])
            and definition.get("user", "").startswith("10001")
        ):
            problem(f"compose.yaml: {service} must run read-only, as user 10001, without capabilities or new privileges")
        environment = definition.get("environment", {})
        if environment.get("RAMPART_NATS_USER") != service or "RAMPART_NATS_PASSWORD" not in environment:
            problem(f"compose.yaml: {service} must connect to NATS as user {service} with its password")
        for variable in REQUIRED_SECRETS.get(service, []) + (["RAMPART_POSTGRES_PASSWORD"] if service in WITH_DATABASE else []):
            if variable not in environment:
                problem(f"compose.yaml: {service} lacks {variable}")
        if ("ports" in definition) != (service == "gateway"):
            problem(f"compose.yaml: only the gateway publishes a port ({service})")
    for infrastructure in ["postgres", "nats"]:
        if infrastructure not in services:
            problem(f"compose.yaml: no {infrastructure}")


def check_nats_chart():
    values = yaml.safe_load(open(path("deploy", "k8s", "nats", "values.yaml")))
    config = values["config"]
    if not (config["jetstream"]["enabled"] and config["cluster"]["enabled"] and config["cluster"]["replicas"] >= 3):
        problem("nats/values.yaml: a cluster of three or more servers with JetStream")
    if config["merge"].get("$include") != "./rampart/authorization.conf":
        problem("nats/values.yaml: must include the shipped authorization.conf")
    users = re.findall(r"password: \$(RAMPART_NATS_PASSWORD_\w+)", open(path("deploy", "nats", "authorization.conf")).read())
    given = set(values["container"]["env"])
    if sorted(users) != sorted(given) or len(users) != len(SERVICES):
        problem(f"nats/values.yaml: passwords for {sorted(given)}, the authorization wants {sorted(users)}")


def main():
    self_test()
    check_kubernetes()
    check_dockerfile()
    check_compose()
    check_nats_chart()
    if problems:
        print(f"deploy check: {len(problems)} problem(s)", file=sys.stderr)
        for message in problems:
            print(f"  - {message}", file=sys.stderr)
        return 1
    print(f"deploy check: 2 overlays valid against Kubernetes {' and '.join(KUBERNETES_VERSIONS)}; Dockerfile, compose and NATS chart consistent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
