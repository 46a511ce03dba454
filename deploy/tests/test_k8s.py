"""The Kubernetes manifests as an operator would apply them: both overlays render with
`kubectl kustomize`, every object validates against a current Kubernetes version's schemas
(kubernetes-validate, offline, strict), and every Deployment keeps the invariants of
docs/operations.md: probes, resources, a hardened security context, an autoscaler and a
disruption budget, and NetworkPolicies that let only the gateway (and the metrics scraper, on
the admin port only) reach a guard. No rendered Secret carries a value."""

import shutil
import subprocess
from functools import cache

import pytest
import yaml

from composefile import ROOT

OVERLAYS = ["dev", "prod"]
KUBERNETES_VERSION = "1.35.0"
SCRAPER_NAMESPACE = "monitoring"
INGRESS_NAMESPACE = "ingress-nginx"


def tool(name):
    path = shutil.which(name)
    assert path, f"{name} is not installed (.ci/run installs it)"
    return path


@cache
def rendered(overlay):
    out = subprocess.run(
        [tool("kubectl"), "kustomize", str(ROOT / "k8s" / "overlays" / overlay)],
        check=True, capture_output=True, text=True,
    ).stdout
    return out, [d for d in yaml.safe_load_all(out) if d]


def of_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def selects(selector, labels):
    """Whether a label selector (matchLabels only, as these manifests use) picks `labels`."""
    match = (selector or {}).get("matchLabels", {})
    assert not (selector or {}).get("matchExpressions"), "matchExpressions are not used here"
    return all(labels.get(k) == v for k, v in match.items())


def port_number(container, port):
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert port in named, f"port {port!r} is not a port of {container['name']}"
    return named[port]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlays_render_and_every_object_validates(overlay, tmp_path):
    text, docs = rendered(overlay)
    assert len(docs) > 20
    path = tmp_path / f"{overlay}.yaml"
    path.write_text(text)
    result = subprocess.run(
        [tool("kubernetes-validate"), "--strict", "--quiet", "-k", KUBERNETES_VERSION, str(path)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ERROR" not in result.stdout + result.stderr


def test_the_validator_rejects_what_it_should(tmp_path):
    """Strict validation catches a misspelt field (so the check above means something)."""
    _, docs = rendered("dev")
    deployment = dict(of_kind(docs, "Deployment")[0])
    deployment["spec"] = {**deployment["spec"], "replica": 2}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(deployment))
    result = subprocess.run(
        [tool("kubernetes-validate"), "--strict", "--quiet", "-k", KUBERNETES_VERSION, str(path)],
        capture_output=True, text=True,
    )
    assert result.returncode != 0, result.stdout


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_keeps_the_invariants(overlay):
    _, docs = rendered(overlay)
    config = {
        k: v for cm in of_kind(docs, "ConfigMap") if cm["metadata"]["name"].startswith("codeguardians-config")
        for k, v in cm["data"].items()
    }
    shutdown = int(config.get("CG_SHUTDOWN_TIMEOUT_SECS", 30))
    deployments = of_kind(docs, "Deployment")
    names = {d["metadata"]["name"] for d in deployments}
    assert {"gateway", "tokenguard", "trustguard", "contextguard", "biasguard", "healthguard"} <= names
    for d in deployments:
        name = d["metadata"]["name"]
        pod = d["spec"]["template"]["spec"]
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert selects(d["spec"]["selector"], labels), name
        pod_security = pod.get("securityContext", {})
        assert pod.get("automountServiceAccountToken") is False, name
        for c in pod["containers"] + pod.get("initContainers", []):
            where = f"{overlay}/{name}/{c['name']}"
            http = port_number(c, "http")
            admin = port_number(c, "admin")
            env = {e["name"]: e.get("value") for e in c.get("env", [])}
            assert env.get("CG_PORT") == str(http) and env.get("CG_ADMIN_PORT") == str(admin), where
            annotations = d["spec"]["template"]["metadata"].get("annotations", {})
            assert annotations.get("prometheus.io/port") == str(admin), f"{where}: scrape the admin port"
            # Probes on the public port's health routes.
            for probe, path in [("startupProbe", "/health/live"), ("readinessProbe", "/health/ready"),
                                ("livenessProbe", "/health/live")]:
                got = c.get(probe, {}).get("httpGet", {})
                assert got.get("path") == path and port_number(c, got.get("port")) == http, f"{where}: {probe}"
            # Requests and limits for CPU and memory.
            res = c.get("resources", {})
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(res.get(kind, {})), f"{where}: {kind}"
            # Hardened: non-root, read-only root filesystem, no capabilities, default seccomp.
            sc = c.get("securityContext", {})
            assert sc.get("runAsNonRoot", pod_security.get("runAsNonRoot")) is True, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert "ALL" in sc.get("capabilities", {}).get("drop", []), where
            seccomp = sc.get("seccompProfile") or pod_security.get("seccompProfile") or {}
            assert seccomp.get("type") == "RuntimeDefault", where
            mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
            assert "/data" in mounts, f"{where}: the one writable place"
            # Graceful stop fits in the grace period: preStop, the shutdown timeout, the hand-over.
            pre_stop = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
            assert pre_stop > 0, where
            assert pod.get("terminationGracePeriodSeconds", 30) >= pre_stop + shutdown + 5, where
        assert pod.get("topologySpreadConstraints"), name
        # An autoscaler (CPU and memory, slow scale-down) and a disruption budget each.
        hpas = [h for h in of_kind(docs, "HorizontalPodAutoscaler")
                if h["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}]
        assert len(hpas) == 1, f"{overlay}/{name}: one HPA"
        hpa = hpas[0]
        assert hpa["apiVersion"] == "autoscaling/v2", name
        resources = {m["resource"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Resource"}
        assert resources == {"cpu", "memory"}, name
        assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 60, name
        assert hpa["spec"]["minReplicas"] >= (3 if name == "gateway" else 1), name
        assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"], name
        pdbs = [p for p in of_kind(docs, "PodDisruptionBudget") if selects(p["spec"]["selector"], labels)]
        assert len(pdbs) == 1, f"{overlay}/{name}: one PDB"


def ingress_rules(docs, labels):
    """The NetworkPolicies that govern ingress to pods with `labels`, and their rules."""
    policies = [p for p in of_kind(docs, "NetworkPolicy")
                if "Ingress" in p["spec"].get("policyTypes", ["Ingress"])
                and selects(p["spec"]["podSelector"], labels)]
    return policies, [r for p in policies for r in p["spec"].get("ingress", [])]


def is_scraper(peer):
    return (peer.get("namespaceSelector", {}).get("matchLabels") == {"kubernetes.io/metadata.name": SCRAPER_NAMESPACE}
            and peer.get("podSelector", {}).get("matchLabels") == {"app.kubernetes.io/name": "prometheus"})


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_admit_only_the_gateway_and_the_scraper(overlay):
    _, docs = rendered(overlay)
    deployments = {d["metadata"]["name"]: d for d in of_kind(docs, "Deployment")}
    gateway_labels = deployments["gateway"]["spec"]["template"]["metadata"]["labels"]
    default_deny = [p for p in of_kind(docs, "NetworkPolicy")
                    if p["spec"]["podSelector"] == {} and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
                    and not p["spec"].get("ingress") and not p["spec"].get("egress")]
    assert default_deny, "a default-deny policy for the namespace"
    for name, d in deployments.items():
        labels = d["spec"]["template"]["metadata"]["labels"]
        container = d["spec"]["template"]["spec"]["containers"][0]
        http, admin = port_number(container, "http"), port_number(container, "admin")
        policies, rules = ingress_rules(docs, labels)
        assert policies, f"{name}: no policy governs its ingress"
        from_gateway = False
        for rule in rules:
            peers = rule.get("from")
            ports = {port_number(container, p["port"]) for p in rule.get("ports") or []}
            assert peers, f"{overlay}/{name}: a rule admits every source"
            assert ports, f"{overlay}/{name}: a rule admits every port"
            for peer in peers:
                if is_scraper(peer):
                    assert ports == {admin}, f"{overlay}/{name}: the scraper reaches only the admin port"
                elif name != "gateway":
                    assert set(peer) == {"podSelector"} and selects(peer["podSelector"], gateway_labels) \
                        and peer["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "gateway"}, \
                        f"{overlay}/{name}: only the gateway may call a guard ({peer})"
                    assert ports == {http}, f"{overlay}/{name}: the gateway reaches the public port only"
                    from_gateway = True
                else:
                    assert peer == {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": INGRESS_NAMESPACE}}}, peer
                    assert ports == {http}, f"{overlay}/gateway: the ingress controller reaches the public port"
        if name != "gateway":
            assert from_gateway, f"{overlay}/{name}: the gateway cannot reach it"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_carries_a_value(overlay):
    _, docs = rendered(overlay)
    for secret in of_kind(docs, "Secret"):
        values = {**secret.get("data", {}), **secret.get("stringData", {})}
        assert not any(values.values()), f"Secret {secret['metadata']['name']} carries values"
    # The template lists every key the manifests take from the Secret, each without a value.
    template = yaml.safe_load((ROOT / "k8s" / "base" / "secret.template.yaml").read_text())
    assert all(v == "" for v in template["stringData"].values())
    used = set()
    for d in docs:
        for spec in _pod_specs(d):
            for c in spec.get("containers", []) + spec.get("initContainers", []):
                for e in c.get("env", []):
                    ref = e.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        assert ref["name"] == "codeguardians-secrets", ref
                        used.add(ref["key"])
    assert used <= set(template["stringData"]), used - set(template["stringData"])
    assert {"CG_INTERNAL_TOKEN", "JWT_SECRET"} <= set(template["stringData"])


def _pod_specs(doc):
    spec = doc.get("spec", {})
    if doc["kind"] in ("Deployment", "StatefulSet", "Job"):
        yield spec["template"]["spec"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_migration_job_and_configuration_are_there(overlay):
    _, docs = rendered(overlay)
    jobs = {j["metadata"]["name"]: j for j in of_kind(docs, "Job")}
    migrate = jobs["codeguardians-migrate"]["spec"]["template"]["spec"]["containers"][0]
    assert migrate["command"] == ["/usr/local/bin/codeguardians", "migrate"]
    config = next(cm for cm in of_kind(docs, "ConfigMap") if cm["metadata"]["name"].startswith("codeguardians-config"))
    assert config["data"]["CG_HOST"] == "0.0.0.0"
    images = {c["image"] for d in of_kind(docs, "Deployment") for c in d["spec"]["template"]["spec"]["containers"]}
    assert len(images) == 1 and not images.pop().endswith(":latest")
    ingress = of_kind(docs, "Ingress")
    assert len(ingress) == 1 and ingress[0]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "gateway"
    if overlay == "prod":
        assert ingress[0]["spec"].get("tls"), "TLS on the production Ingress"
        assert config["data"]["POSTGRES_SSLMODE"] == "require"
        assert config["data"]["REDIS_TLS"] == "true" and config["data"]["REDIS_CLUSTER_NODES"]
        assert config["data"]["AWS_SERVER_SIDE_ENCRYPTION"] == "aws:kms"
