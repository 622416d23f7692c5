"""The Helm chart: lint, schema, what it renders, and every rendered object accepted by the real API server."""

from __future__ import annotations

import base64
import json
import re
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from mediagen.controller.settings import Settings
from mediagen.gateway.settings import GatewaySettings
from mediagen_dev import helm as helm_module
from mediagen_dev.controlplane import ControlPlane
from mediagen_dev.helm import CHART, Helm, HelmError, find_helm, to_yaml
from mediagen_dev.paths import REPO_ROOT

ROOT = REPO_ROOT
CI = CHART / "ci"
VALUE_SETS: dict[str, list[Path]] = {
    "defaults": [],
    "mock": [CI / "mock-values.yaml"],
    "all-features": [CI / "all-features-values.yaml"],
}
# Kubernetes' "restricted" Pod Security Standard, checked by the API server itself on our pod templates.
RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/warn": "restricted"}


def prometheus_operator_crd(kind: str) -> dict[str, Any]:
    """A stand-in for one of the Prometheus operator's CRDs, so the ServiceMonitors and rules can be dry-run too."""
    plural = kind.lower() + "s"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.monitoring.coreos.com"},
        "spec": {
            "group": "monitoring.coreos.com",
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                }
            ],
        },
    }


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """The pinned helm (built on first use by hack/build-helm.sh)."""
    try:
        return Helm(find_helm(), tmp_path_factory.mktemp("helm-home"))
    except HelmError as exc:
        pytest.fail(str(exc), pytrace=False)


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str, suffix: str) -> dict[str, Any]:
    matches = [obj for obj in of_kind(objects, kind) if obj["metadata"]["name"].endswith(suffix)]
    assert len(matches) == 1, f"{kind} *{suffix}: {[m['metadata']['name'] for m in matches]}"
    return matches[0]


def env_names(model: type[Any], prefix: str = "") -> set[str]:
    """The environment variables a pydantic-settings class reads."""
    return {(field.alias or prefix + name).upper() for name, field in model.model_fields.items()}


# --- files ----------------------------------------------------------------------------------------------------


def test_chart_crds_hold_exactly_the_generated_crd() -> None:
    generated = ROOT / "crds" / "mediagen.fleek.xyz_mediagenerations.yaml"
    assert sorted(p.name for p in (CHART / "crds").iterdir()) == [generated.name]
    assert (CHART / "crds" / generated.name).read_bytes() == generated.read_bytes(), "run: make crd"
    policy = ROOT / "crds" / "mediagen.fleek.xyz_input-policy.yaml"
    assert (CHART / "files" / "input-policy.yaml").read_bytes() == policy.read_bytes(), "run: make crd"


def test_helm_version_is_pinned_in_one_place() -> None:
    script = (ROOT / "hack" / "build-helm.sh").read_text()
    match = re.search(r"^HELM_VERSION=(\S+)$", script, re.MULTILINE)
    assert match and match.group(1) == helm_module.HELM_VERSION
    go_mod = (ROOT / "hack" / "tools" / "helm" / "go.mod").read_text()
    assert f"helm.sh/helm/v3 {helm_module.HELM_VERSION}" in go_mod
    assert (ROOT / "hack" / "tools" / "helm" / "go.sum").is_file()


# --- lint and schema --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_helm_lint_is_clean(helm: Helm, value_set: str) -> None:
    result = helm.lint(values=VALUE_SETS[value_set])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "[WARNING]" not in output and "[ERROR]" not in output, output


@pytest.mark.parametrize(
    ("key", "misspelled"),
    [
        ("operator.replica", "replica"),  # replicas
        ("replicat.existingSecret", "replicat"),  # replicate
        ("gateway.servce.port", "servce"),  # service
        ("settings.maxInflights", "maxInflights"),  # maxInflight
    ],
)
def test_schema_rejects_a_misspelled_key(helm: Helm, key: str, misspelled: str) -> None:
    result = helm.lint(set_values={key: "2"})
    assert result.returncode != 0
    assert f"additional properties '{misspelled}' not allowed" in result.stdout + result.stderr
    template = helm.run("template", "x", str(CHART), f"--set={key}=2", check=False)
    assert template.returncode != 0 and misspelled in template.stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"operator.replicas": "0"}, "/operator/replicas"),
        ({"image.pullPolicy": "Sometimes"}, "/image/pullPolicy"),
        ({"settings.logFormat": "xml"}, "/settings/logFormat"),
        ({"r2.presignTtlSeconds": "9999999"}, "/r2/presignTtlSeconds"),
        ({"operator.leaderElection.leaseDurationSeconds": "1"}, "/operator/leaderElection/leaseDurationSeconds"),
        ({"operator.leaderElection.retryPeriodSeconds": "0"}, "/operator/leaderElection/retryPeriodSeconds"),
        ({"operator.leaderElection.renewDeadlineSeconds": "-1"}, "/operator/leaderElection/renewDeadlineSeconds"),
    ],
)
def test_schema_rejects_bad_values(helm: Helm, values: dict[str, str], message: str) -> None:
    result = helm.lint(set_values=values)
    assert result.returncode != 0 and message in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"r2.existingSecret": "r2"}, "also set r2.accountId"),
        (
            {"operator.replicas": "2", "operator.leaderElection.renewDeadlineSeconds": "10"},
            "needs leaseDurationSeconds > renewDeadlineSeconds > retryPeriodSeconds",
        ),
        (
            {"operator.leaderElection.enabled": "true", "operator.leaderElection.retryPeriodSeconds": "7"},
            "needs leaseDurationSeconds > renewDeadlineSeconds > retryPeriodSeconds",
        ),
        ({"serviceMonitor.enabled": "true", "operator.metrics.enabled": "false"}, "needs operator.metrics.enabled"),
        ({"prometheusRule.enabled": "true", "operator.metrics.enabled": "false"}, "needs operator.metrics.enabled"),
        ({"operator.webhooks.enabled": "true"}, "set replicate.webhookUrl"),
        ({"gateway.enabled": "true", "gateway.tokenReview": "true"}, "set gateway.tokenReviewNamespaces"),
        ({"resourceQuota.enabled": "true"}, "set resourceQuota.namespaces"),
        ({"apiService.enabled": "true"}, "also set gateway.enabled"),
        (
            {"gateway.enabled": "true", "apiService.enabled": "true", "apiService.certManager.enabled": "true"},
            "set apiService.certManager.issuerRef.name",
        ),
        (
            {
                "operator.webhooks.enabled": "true",
                "replicate.webhookUrl": "https://h/x",
                "operator.webhooks.port": "8081",
            },
            "operator.webhooks.port must differ",
        ),
    ],
)
def test_impossible_combinations_fail_with_the_fix(helm: Helm, values: dict[str, str], message: str) -> None:
    result = helm.run("template", "x", str(CHART), *[f"--set={k}={v}" for k, v in values.items()], check=False)
    assert result.returncode != 0 and message in result.stderr, result.stderr


# --- what it renders -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_pod_runs_restricted_with_a_read_only_root(helm: Helm, value_set: str) -> None:
    objects = helm.template(values=VALUE_SETS[value_set])
    deployments = of_kind(objects, "Deployment")
    assert deployments
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 65532
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}
            assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
        volumes = [volume["name"] for volume in pod["volumes"]]
        assert volumes in (["tmp"], ["tmp", "gateway-api-tls"]) and "emptyDir" in pod["volumes"][0]


def test_defaults_are_a_self_contained_mock_demo(helm: Helm) -> None:
    objects = helm.template()
    config = one(objects, "ConfigMap", "-operator")["data"]
    assert config["R2_ENDPOINT_URL"] == "http://mediagen-store:9000"
    store = one(objects, "Service", "-store")
    assert store["metadata"]["name"] == "mediagen-store" and store["spec"]["ports"][0]["port"] == 9000
    operator = one(objects, "Deployment", "-operator")["spec"]
    env = {item["name"]: item for item in operator["template"]["spec"]["containers"][0]["env"]}
    assert "REPLICATE_API_TOKEN" not in env  # no token: the mock generator
    assert operator["strategy"] == {"type": "Recreate"} and operator["replicas"] == 1
    assert of_kind(objects, "ValidatingAdmissionPolicy") and of_kind(objects, "ValidatingAdmissionPolicyBinding")
    assert len(of_kind(objects, "ServiceAccount")) == 1, "only the operator's ServiceAccount without the gateway"


def test_secrets_are_referenced_by_name_never_rendered(helm: Helm) -> None:
    objects = helm.template(values=VALUE_SETS["all-features"])
    # The Secrets rendered are the ones the chart makes up itself: the key that signs gallery sessions, and the
    # aggregated API's serving certificate (its CA in the APIService's caBundle).
    rendered = {s["metadata"]["name"]: s for s in of_kind(objects, "Secret")}
    assert sorted(rendered) == ["mediagen-gateway-api-tls", "mediagen-gateway-session"]
    tls = rendered["mediagen-gateway-api-tls"]["data"]
    assert one(objects, "APIService", "gateway.mediagen.fleek.xyz")["spec"]["caBundle"] == tls["ca.crt"]
    gateway = one(objects, "Deployment", "-gateway")["spec"]["template"]["spec"]["containers"][0]
    session = next(item for item in gateway["env"] if item["name"] == "MEDIAGEN_GATEWAY_SESSION_KEY")
    assert session["valueFrom"]["secretKeyRef"] == {"name": "mediagen-gateway-session", "key": "session-key"}
    mine = helm.template(values=VALUE_SETS["all-features"], set_values={"gateway.sessionSecret": "my-sessions"})
    assert [s["metadata"]["name"] for s in of_kind(mine, "Secret")] == ["mediagen-gateway-api-tls"]
    container = one(objects, "Deployment", "-operator")["spec"]["template"]["spec"]["containers"][0]
    refs = {
        item["name"]: item["valueFrom"]["secretKeyRef"]
        for item in container["env"]
        if "secretKeyRef" in item.get("valueFrom", {})
    }
    assert refs == {
        "REPLICATE_API_TOKEN": {"name": "mediagen-replicate", "key": "REPLICATE_API_TOKEN"},
        "R2_ACCESS_KEY_ID": {"name": "mediagen-r2", "key": "R2_ACCESS_KEY_ID"},
        "R2_SECRET_ACCESS_KEY": {"name": "mediagen-r2", "key": "R2_SECRET_ACCESS_KEY"},
        "MEDIAGEN_WEBHOOK_SECRET": {"name": "mediagen-replicate-webhooks", "key": "webhook-secret"},
    }
    for deployment in of_kind(objects, "Deployment"):  # nothing secret is mounted, but the serving certificate
        mounted = [
            v["secret"]["secretName"] for v in deployment["spec"]["template"]["spec"]["volumes"] if "secret" in v
        ]
        assert mounted == (["mediagen-gateway-api-tls"] if deployment["metadata"]["name"].endswith("-gateway") else [])


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_settings_are_environment_variables_the_code_reads(
    helm: Helm, value_set: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = helm.template(values=VALUE_SETS[value_set])
    config = one(objects, "ConfigMap", "-operator")["data"]
    known = env_names(Settings)
    assert set(config) <= known, f"unknown settings: {set(config) - known}"
    for deployment in of_kind(objects, "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            names = {item["name"] for item in container.get("env", [])} - {"S3_IGNORE_SUBDOMAIN_BUCKETNAME"}
            reads = env_names(GatewaySettings, "MEDIAGEN_GATEWAY_") if container["name"] == "gateway" else known
            assert names <= reads, f"{container['name']}: unknown variables {names - reads}"
    for name, value in config.items():
        monkeypatch.setenv(name, value)
    settings = Settings()  # the values parse as the operator will parse them
    assert settings.max_output_bytes == 5 * 1024**3 and settings.max_inflight == 200
    assert settings.leader_election is (value_set == "all-features")
    assert settings.output_allowed_hosts == ["replicate.delivery", "*.replicate.delivery"]


def test_the_aggregated_api_is_registered_with_its_service_certificate_and_port(helm: Helm) -> None:
    assert not of_kind(helm.template(set_values={"gateway.enabled": "true"}), "APIService")
    objects = helm.template(values=VALUE_SETS["all-features"])
    (apiservice,) = of_kind(objects, "APIService")
    assert apiservice["metadata"]["name"] == "v1alpha1.gateway.mediagen.fleek.xyz"
    assert apiservice["spec"]["service"] == {"namespace": "mediagen", "name": "mediagen-gateway-api", "port": 443}
    service = one(objects, "Service", "-gateway-api")["spec"]
    assert service["ports"][0]["targetPort"] == "aggregated"
    gateway = one(objects, "Deployment", "-gateway")["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item.get("value") for item in gateway["env"]}
    assert env["MEDIAGEN_GATEWAY_AGGREGATED_PORT"] == "8443"
    assert {"name": "aggregated", "containerPort": 8443, "protocol": "TCP"} in gateway["ports"]
    certificate = x509.load_pem_x509_certificate(
        base64.b64decode(one(objects, "Secret", "-gateway-api-tls")["data"]["tls.crt"])
    )
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "mediagen-gateway-api.mediagen.svc" in names.get_values_for_type(x509.DNSName)
    managed = helm.template(
        values=VALUE_SETS["all-features"],
        set_values={"apiService.certManager.enabled": "true", "apiService.certManager.issuerRef.name": "ca"},
        show_only=["templates/apiservice.yaml"],
    )
    assert sorted(o["kind"] for o in managed) == ["APIService", "Certificate", "Service"]
    (injected,) = of_kind(managed, "APIService")
    assert "caBundle" not in injected["spec"]
    assert injected["metadata"]["annotations"] == {"cert-manager.io/inject-ca-from": "mediagen/mediagen-gateway-api"}


def test_an_optional_resource_quota_bounds_generations_per_tenant_namespace(helm: Helm) -> None:
    assert not of_kind(helm.template(), "ResourceQuota")
    objects = helm.template(
        set_values={"resourceQuota.enabled": "true", "gateway.namespaces": "{team-a,team-b}"},
    )
    quotas = {q["metadata"]["namespace"]: q["spec"]["hard"] for q in of_kind(objects, "ResourceQuota")}
    assert quotas == {ns: {"count/mediagenerations.mediagen.fleek.xyz": "2000"} for ns in ("team-a", "team-b")}


def test_webhooks_are_received_behind_a_service_only_when_enabled(helm: Helm) -> None:
    assert not [s for s in of_kind(helm.template(), "Service") if s["metadata"]["name"].endswith("-webhooks")]
    objects = helm.template(values=VALUE_SETS["all-features"])
    service = one(objects, "Service", "-operator-webhooks")
    assert service["spec"]["ports"] == [{"name": "webhooks", "port": 8082, "targetPort": "webhooks", "protocol": "TCP"}]
    container = one(objects, "Deployment", "-operator")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "webhooks", "containerPort": 8082, "protocol": "TCP"} in container["ports"]
    config = one(objects, "ConfigMap", "-operator")["data"]
    assert config["MEDIAGEN_WEBHOOK_PORT"] == "8082"
    assert config["MEDIAGEN_WEBHOOK_URL"] == "https://hooks.example.com/replicate-webhook"
    ingress = one(objects, "NetworkPolicy", "-operator")["spec"]["ingress"]
    allowed = {rule["ports"][0]["port"]: rule["from"] for rule in ingress}
    assert allowed["webhooks"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "ingress-nginx"
    }


def test_leader_election_is_on_exactly_when_asked_for_or_several_replicas_run(helm: Helm) -> None:
    single = helm.template()
    assert "MEDIAGEN_LEADER_ELECTION" not in one(single, "ConfigMap", "-operator")["data"]
    assert one(single, "Deployment", "-operator")["spec"]["strategy"] == {"type": "Recreate"}
    assert not [role for role in of_kind(single, "Role") if role["metadata"]["name"].endswith("-leader-election")]
    assert "kopf.dev" not in json.dumps(single) and "coordination.k8s.io" not in json.dumps(single)

    for values in ({"operator.replicas": "3"}, {"operator.leaderElection.enabled": "true"}):
        objects = helm.template(namespace="media-system", set_values=values)
        config = one(objects, "ConfigMap", "-operator")["data"]
        assert {k: v for k, v in config.items() if "LEASE" in k or "LEADER" in k} == {
            "MEDIAGEN_LEADER_ELECTION": "true",
            "MEDIAGEN_LEASE_NAME": "mediagen-operator",
            "MEDIAGEN_LEASE_NAMESPACE": "media-system",
            "MEDIAGEN_LEASE_DURATION_SECONDS": "10",
            "MEDIAGEN_LEASE_RENEW_DEADLINE_SECONDS": "7",
            "MEDIAGEN_LEASE_RETRY_PERIOD_SECONDS": "2",
        }
        deployment = one(objects, "Deployment", "-operator")["spec"]
        assert deployment["strategy"] == {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
        }
        container = deployment["template"]["spec"]["containers"][0]
        assert {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in container["env"]
        assert "readinessProbe" not in container  # a standby not Ready would stall every rolling update
        role = one(objects, "Role", "-operator-leader-election")
        assert role["metadata"]["namespace"] == "media-system"
        assert role["rules"] == [
            {
                "apiGroups": ["coordination.k8s.io"],
                "resources": ["leases"],
                "resourceNames": ["mediagen-operator"],
                "verbs": ["get", "update"],
            },
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        ]
        binding = one(objects, "RoleBinding", "-operator-leader-election")
        assert binding["roleRef"]["name"] == role["metadata"]["name"]
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "mediagen-operator", "namespace": "media-system"}
        ]
        assert "coordination.k8s.io" not in json.dumps(one(objects, "ClusterRole", "-operator")["rules"])


def test_one_watched_namespace_and_a_pattern_both_work_with_several_replicas(helm: Helm) -> None:
    # The Lease lives in the release namespace, whatever the operator watches.
    for watched in ("media", "team-*"):
        objects = helm.template(
            namespace="sys", set_values={"operator.replicas": "2", "operator.watchNamespace": watched}
        )
        assert one(objects, "ConfigMap", "-operator")["data"]["MEDIAGEN_LEASE_NAMESPACE"] == "sys"
        assert one(objects, "Role", "-operator-leader-election")["metadata"]["namespace"] == "sys"


def operator_affinity(helm: Helm, values: dict[str, str]) -> dict[str, Any] | None:
    deployment = one(helm.template(set_values=values), "Deployment", "-operator")
    affinity: dict[str, Any] | None = deployment["spec"]["template"]["spec"].get("affinity")
    return affinity


def test_several_replicas_prefer_different_nodes_by_default(helm: Helm) -> None:
    """A standby on the active replica's node dies with it: spread them unless told otherwise."""
    assert operator_affinity(helm, {}) is None  # one replica: nothing to spread
    own_pods = {
        "topologyKey": "kubernetes.io/hostname",
        "labelSelector": {
            "matchLabels": {
                "app.kubernetes.io/name": "mediagen",
                "app.kubernetes.io/instance": "mediagen",
                "app.kubernetes.io/component": "operator",
            }
        },
    }
    assert operator_affinity(helm, {"operator.replicas": "2"}) == {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": own_pods}]
        }
    }
    assert operator_affinity(helm, {"operator.replicas": "2", "operator.podAntiAffinity": "required"}) == {
        "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [own_pods]}
    }
    assert operator_affinity(helm, {"operator.replicas": "2", "operator.podAntiAffinity": ""}) is None
    # The user's own affinity replaces the rule entirely.
    zone = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["a"]}]}
                ]
            }
        }
    }
    values = {
        "operator.replicas": "2",
        "operator.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
        ".nodeSelectorTerms[0].matchExpressions[0].key": "topology.kubernetes.io/zone",
        "operator.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
        ".nodeSelectorTerms[0].matchExpressions[0].operator": "In",
        "operator.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
        ".nodeSelectorTerms[0].matchExpressions[0].values[0]": "a",
    }
    assert operator_affinity(helm, values) == zone
    assert "must be one of" in helm.lint(set_values={"operator.podAntiAffinity": "sometimes"}).stdout


def test_single_namespace_install_grants_nothing_cluster_wide(helm: Helm) -> None:
    objects = helm.template(set_values={"operator.watchNamespace": "media"})
    (role,) = of_kind(objects, "Role")
    assert role["metadata"]["namespace"] == "media"
    assert not of_kind(objects, "ClusterRole") and not of_kind(objects, "ClusterRoleBinding")
    assert one(objects, "ConfigMap", "-operator")["data"]["MEDIAGEN_NAMESPACE"] == "media"


# --- the real API server -------------------------------------------------------------------------------------


def restricted_namespace(plane: ControlPlane, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    plane.kubectl(
        "create",
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": RESTRICTED}}),
    )
    return name


def server_dry_run(plane: ControlPlane, objects: list[dict[str, Any]]) -> str:
    """Server-side apply in dry-run mode; fails on any rejection and on any PodSecurity warning."""
    result = plane.kubectl(
        "apply", "--server-side", "--dry-run=server", "--force-conflicts", "--field-manager=mediagen-chart-test",
        "-f", "-", input=to_yaml(objects), check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "would violate PodSecurity" not in result.stderr, result.stderr
    assert result.stdout.count("(server dry run)") == len(objects), result.stdout
    return result.stdout


@pytest.fixture(scope="module")
def service_monitor_crd(control_plane: ControlPlane) -> None:
    for kind in ("ServiceMonitor", "PrometheusRule"):
        crd = prometheus_operator_crd(kind)
        control_plane.kubectl("apply", "-f", "-", input=json.dumps(crd))
        control_plane.wait_crd_established(crd["metadata"]["name"])


@pytest.mark.parametrize("variant", [*VALUE_SETS, "single-namespace", "gateway-tenants"])
def test_api_server_accepts_every_rendered_object(
    control_plane: ControlPlane, api: None, service_monitor_crd: None, helm: Helm, variant: str
) -> None:
    namespace = restricted_namespace(control_plane, "chart")
    values, extra = VALUE_SETS.get(variant, VALUE_SETS["all-features"]), {}
    if variant in ("single-namespace", "gateway-tenants"):
        watched = restricted_namespace(control_plane, "chart-watched")
        key = "operator.watchNamespace" if variant == "single-namespace" else "gateway.namespaces[0]"
        extra = {key: watched}
        if variant == "gateway-tenants":
            extra["resourceQuota.enabled"] = "true"  # a quota in each tenant namespace
    objects = helm.template(
        f"dry-{uuid.uuid4().hex[:6]}", namespace, values=values, set_values=extra, include_crds=True
    )
    kinds = {obj["kind"] for obj in objects}
    assert {"CustomResourceDefinition", "Deployment", "ServiceAccount"} <= kinds
    server_dry_run(control_plane, objects)


def test_notes_tell_how_to_create_the_first_generation(control_plane: ControlPlane, api: None, helm: Helm) -> None:
    namespace = restricted_namespace(control_plane, "notes")
    # The session installed the admission policy from crds/ already; helm would refuse to adopt it.
    install = [
        "install",
        "first",
        str(CHART),
        "-n",
        namespace,
        "--dry-run=client",
        "--set=admissionPolicy.enabled=false",
    ]
    result = helm.run(*install, kubeconfig=control_plane.kubeconfig)
    notes = result.stdout.split("NOTES:", 1)[1]
    assert "kubectl wait --for=condition=Succeeded mg/hello-mediagen" in notes
    assert "Generator: mock" in notes and "in-memory demo store" in notes
    manifest = textwrap.dedent(notes.split("<<'YAML'", 1)[1].split("\n", 1)[1].split("   YAML\n", 1)[0])
    # The MediaGeneration the notes show is one the API server accepts.
    created = control_plane.kubectl("create", "-n", namespace, "--dry-run=server", "-f", "-", input=manifest)
    assert "mediageneration.mediagen.fleek.xyz/hello-mediagen created (server dry run)" in created.stdout


def test_the_pod_security_check_has_teeth(control_plane: ControlPlane, api: None, helm: Helm) -> None:
    """A weaker security context is reported by the API server, so the dry runs above prove "restricted"."""
    namespace = restricted_namespace(control_plane, "chart-weak")
    weak = {"securityContext.allowPrivilegeEscalation": "true", "admissionPolicy.enabled": "false"}
    objects = of_kind(helm.template("weak", namespace, set_values=weak), "Deployment")
    result = control_plane.kubectl(
        "apply", "--dry-run=server", "-f", "-", input=to_yaml(objects), check=False
    )  # fmt: skip
    assert 'would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false' in result.stderr
