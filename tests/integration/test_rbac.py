"""Least privilege, proven on the real API server: the chart's RBAC is applied, the operator runs with a token of
the chart's ServiceAccount (not admin) and completes generations; `kubectl auth can-i` shows what each role may
not do. The README's "RBAC" section lists the same rules."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from mediagen.gateway import rbac
from mediagen_dev.controlplane import ControlPlane
from mediagen_dev.fake_replicate import FakeReplicate, ModelScript
from mediagen_dev.helm import Helm, HelmError, find_helm, to_yaml
from mediagen_dev.operator_process import OperatorProcess
from mediagen_dev.s3_server import EmbeddedS3
from tests.support.stack_fixtures import STARTED, replicate_env, wait_phase

GROUP = "mediagen.fleek.xyz"
MG = f"mediagenerations.{GROUP}"
RBAC_TEMPLATES = ["templates/operator-rbac.yaml", "templates/serviceaccounts.yaml"]

# What the operator is granted on MediaGenerations and around them, wherever it works (see the README).
OPERATOR_RULES = [
    {"apiGroups": [GROUP], "resources": ["mediagenerations"], "verbs": ["get", "list", "watch", "patch", "delete"]},
    {"apiGroups": [GROUP], "resources": ["mediagenerations/status"], "verbs": ["patch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
]
CRD_RULE = {
    "apiGroups": ["apiextensions.k8s.io"],
    "resources": ["customresourcedefinitions"],
    "verbs": ["get", "list", "watch"],
}
NAMESPACES_RULE = {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]}


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """The pinned helm (built on first use by hack/build-helm.sh)."""
    try:
        return Helm(find_helm(), tmp_path_factory.mktemp("helm-home"))
    except HelmError as exc:
        pytest.fail(str(exc), pytrace=False)


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] == kind]


def service_account(objects: list[dict[str, Any]], suffix: str) -> str:
    (name,) = [
        o["metadata"]["name"] for o in of_kind(objects, "ServiceAccount") if o["metadata"]["name"].endswith(suffix)
    ]
    return name


def install_rbac(plane: ControlPlane, objects: list[dict[str, Any]]) -> None:
    """Apply rendered ServiceAccounts, roles and bindings as the admin."""
    plane.kubectl("apply", "-f", "-", input=to_yaml(objects))


def can_i(plane: ControlPlane, user: str, verb: str, resource: str, *where: str) -> bool:
    """``kubectl auth can-i`` as ``user`` (impersonated by the admin)."""
    result = plane.kubectl("auth", "can-i", verb, resource, f"--as={user}", *where, check=False)
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), result.stderr
    return answer == "yes"


def check_can_i(plane: ControlPlane, user: str, expected: list[tuple[bool, str, str, tuple[str, ...]]]) -> None:
    wrong = [
        f"{'may' if not allowed else 'may not'}: {verb} {resource} {' '.join(where)}"
        for allowed, verb, resource, where in expected
        if can_i(plane, user, verb, resource, *where) != allowed
    ]
    assert not wrong, f"{user}:\n" + "\n".join(wrong)


def sa_user(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


# --- the operator, end to end under its own ServiceAccount -------------------------------------------------------


class Run:
    """One chart release's operator RBAC installed, and an operator process using its ServiceAccount's token."""

    def __init__(self, plane: ControlPlane, helm: Helm, watch: str, tag: str) -> None:
        self.plane = plane
        self.release = f"rbac-{tag}"
        self.namespace = f"rbac-{tag}-sys"
        plane.create_namespace(self.namespace)
        self.objects = helm.template(
            self.release, self.namespace, set_values={"operator.watchNamespace": watch}, show_only=RBAC_TEMPLATES
        )
        install_rbac(plane, self.objects)
        self.service_account = service_account(self.objects, "-operator")
        self.user = sa_user(self.namespace, self.service_account)
        self.kubeconfig = plane.service_account_kubeconfig(self.namespace, self.service_account)


def generate_under_service_account(
    run: Run,
    watch: str,
    work_namespace: str,
    custom_api: k8s.CustomObjectsApi,
    s3: EmbeddedS3,
    fake_replicate: FakeReplicate,
    log: Path,
) -> str:
    """Run the operator with the ServiceAccount's token through a whole generation and its TTL deletion.

    That uses every verb granted: list/watch (kopf), patch (finalizer + marker), patch status (prediction id,
    final status), create events, delete (TTL). Returns the operator's log."""
    plane = run.plane
    model = f"rbac-{uuid.uuid4().hex[:8]}/model"
    fake_replicate.add_model(model, ModelScript(queue_seconds=0.1, processing_seconds=0.2, output="data"))
    with OperatorProcess(run.kubeconfig, replicate_env(s3, fake_replicate, watch), log) as operator:
        operator.wait_for_log(STARTED)
        body = {
            "apiVersion": f"{GROUP}/v1alpha1",
            "kind": "MediaGeneration",
            "metadata": {"name": "least-privilege"},
            "spec": {"model": model, "input": {"prompt": "x"}, "ttlSecondsAfterFinished": 2},
        }
        plane.kubectl("apply", "-n", work_namespace, "-f", "-", input=json.dumps(body))
        status = wait_phase(custom_api, work_namespace, "least-privilege", "Succeeded", "Failed")["status"]
        assert status["phase"] == "Succeeded", status
        assert status["outputs"][0]["sha256"]
        deadline = time.monotonic() + 30
        while plane.kubectl("get", "mg", "least-privilege", "-n", work_namespace, check=False).returncode == 0:
            assert time.monotonic() < deadline, "not deleted after its TTL"
            time.sleep(0.2)
        events = json.loads(plane.kubectl("get", "events", "-n", work_namespace, "-o", "json").stdout)["items"]
        reasons = {e["reason"] for e in events if e.get("reportingComponent") == "mediagen-operator"}
        assert {"Running", "Succeeded"} <= reasons, reasons
        return operator.logs()


def assert_no_permission_errors(logs: str) -> None:
    for marker in ("Forbidden", "forbidden", " 403", "Not enough permissions", "could not record event"):
        offending = [line for line in logs.splitlines() if marker in line]
        assert not offending, "\n".join(offending[:5])


def test_cluster_role_operator_completes_a_generation(
    control_plane: ControlPlane,
    api: None,
    helm: Helm,
    custom_api: k8s.CustomObjectsApi,
    s3: EmbeddedS3,
    fake_replicate: FakeReplicate,
    tmp_path: Path,
) -> None:
    tag = uuid.uuid4().hex[:6]
    # A namespace pattern: the cluster-wide role (plus namespaces list/watch), without touching other tests' work.
    watch = f"rbac-{tag}-w*"
    run = Run(control_plane, helm, watch, tag)
    (role,) = of_kind(run.objects, "ClusterRole")
    assert role["rules"] == [*OPERATOR_RULES, CRD_RULE, NAMESPACES_RULE]
    assert not of_kind(run.objects, "Role")
    work = f"rbac-{tag}-work"
    control_plane.create_namespace(work)
    logs = generate_under_service_account(run, watch, work, custom_api, s3, fake_replicate, tmp_path / "operator.log")
    assert_no_permission_errors(logs)


def test_namespace_role_operator_completes_a_generation(
    control_plane: ControlPlane,
    api: None,
    helm: Helm,
    custom_api: k8s.CustomObjectsApi,
    s3: EmbeddedS3,
    fake_replicate: FakeReplicate,
    tmp_path: Path,
) -> None:
    tag = uuid.uuid4().hex[:6]
    work = f"rbac-{tag}-only"
    control_plane.create_namespace(work)
    run = Run(control_plane, helm, work, tag)
    (role,) = of_kind(run.objects, "Role")
    assert role["metadata"]["namespace"] == work and role["rules"] == OPERATOR_RULES
    assert not of_kind(run.objects, "ClusterRole") and not of_kind(run.objects, "ClusterRoleBinding")
    logs = generate_under_service_account(run, work, work, custom_api, s3, fake_replicate, tmp_path / "operator.log")
    assert_no_permission_errors(logs)


# --- what the operator may not do ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def other_namespace(control_plane: ControlPlane) -> str:
    name = f"rbac-other-{uuid.uuid4().hex[:6]}"
    control_plane.create_namespace(name)
    return name


def test_cluster_wide_operator_may_do_only_what_it_uses(
    control_plane: ControlPlane, api: None, helm: Helm, other_namespace: str
) -> None:
    run = Run(control_plane, helm, "", uuid.uuid4().hex[:6])
    own, other = ("-n", run.namespace), ("-n", other_namespace)
    check_can_i(
        control_plane,
        run.user,
        [
            # What it uses, in every namespace.
            *[(True, verb, MG, other) for verb in ("get", "list", "watch", "patch", "delete")],
            (True, "list", MG, ("--all-namespaces",)),
            (True, "patch", MG, ("--subresource=status", *other)),
            (True, "create", "events", other),
            (True, "list", "customresourcedefinitions", ()),
            # Nothing else on MediaGenerations: it never creates, updates or replaces them.
            (False, "create", MG, other),
            (False, "update", MG, other),
            (False, "deletecollection", MG, other),
            (False, "update", MG, ("--subresource=status", *other)),
            # No Secrets anywhere, not even its own namespace's: credentials arrive as environment variables.
            (False, "get", "secrets", own),
            (False, "get", "secrets", other),
            (False, "list", "secrets", ("--all-namespaces",)),
            # Nothing it does not use.
            (False, "get", "configmaps", other),
            (False, "get", "pods", other),
            (False, "create", "pods", other),
            (False, "create", "deployments.apps", other),
            (False, "list", "namespaces", ()),  # all namespaces: no need to list them
            (False, "create", "customresourcedefinitions", ()),
            (False, "update", "events", other),
            (False, "create", "leases.coordination.k8s.io", own),  # one replica: no leader election
            # No way to grant itself more.
            (False, "create", "rolebindings.rbac.authorization.k8s.io", other),
            (False, "escalate", "clusterroles.rbac.authorization.k8s.io", ()),
            (False, "bind", "clusterroles.rbac.authorization.k8s.io", ()),
            (False, "impersonate", "serviceaccounts", other),
            (False, "create", "serviceaccounts/token", own),
        ],
    )


def test_single_namespace_operator_may_not_leave_its_namespace(
    control_plane: ControlPlane, api: None, helm: Helm, other_namespace: str
) -> None:
    tag = uuid.uuid4().hex[:6]
    work = f"rbac-{tag}-only"
    control_plane.create_namespace(work)
    run = Run(control_plane, helm, work, tag)
    inside, own, other = ("-n", work), ("-n", run.namespace), ("-n", other_namespace)
    check_can_i(
        control_plane,
        run.user,
        [
            *[(True, verb, MG, inside) for verb in ("get", "list", "watch", "patch", "delete")],
            (True, "patch", MG, ("--subresource=status", *inside)),
            (True, "create", "events", inside),
            *[(False, verb, MG, other) for verb in ("get", "list", "watch", "patch", "delete")],
            (False, "list", MG, ("--all-namespaces",)),
            (False, "patch", MG, ("--subresource=status", *other)),
            (False, "create", "events", other),
            (False, "create", MG, inside),
            (False, "get", "secrets", inside),
            (False, "get", "secrets", own),
            (False, "get", "secrets", other),
            # Nothing cluster-wide at all.
            (False, "list", "namespaces", ()),
            (False, "list", "customresourcedefinitions", ()),
            (False, "get", "pods", inside),
        ],
    )


def test_leader_election_adds_only_its_own_lease(
    control_plane: ControlPlane, api: None, helm: Helm, other_namespace: str
) -> None:
    tag = uuid.uuid4().hex[:6]
    namespace = f"rbac-{tag}-sys"
    control_plane.create_namespace(namespace)
    objects = helm.template(f"rbac-{tag}", namespace, set_values={"operator.replicas": "2"}, show_only=RBAC_TEMPLATES)
    install_rbac(control_plane, objects)
    user = sa_user(namespace, service_account(objects, "-operator"))
    (lease,) = next(o for o in objects if o["metadata"]["name"].endswith("-leader-election"))["rules"][0][
        "resourceNames"
    ]
    own, other = ("-n", namespace), ("-n", other_namespace)
    leases = "leases.coordination.k8s.io"
    check_can_i(
        control_plane,
        user,
        [
            (True, "get", f"{leases}/{lease}", own),
            (True, "update", f"{leases}/{lease}", own),
            (True, "create", leases, own),
            # Not another Lease, not another verb, not another namespace.
            (False, "get", f"{leases}/someone-else", own),
            (False, "update", f"{leases}/someone-else", own),
            (False, "patch", f"{leases}/{lease}", own),
            (False, "delete", f"{leases}/{lease}", own),
            (False, "list", leases, own),
            (False, "watch", leases, own),
            (False, "create", leases, other),
            (False, "get", f"{leases}/{lease}", other),
            (False, "update", f"{leases}/{lease}", ("-n", "kube-system")),
            # Nothing of kopf's peering is left.
            (False, "create", "clusterkopfpeerings.kopf.dev", ()),
        ],
    )


def test_create_cannot_be_limited_to_a_lease_name(control_plane: ControlPlane, api: None) -> None:
    """Why the chart grants create on Leases without a name: a rule naming the Lease does not allow creating it."""
    namespace = f"rbac-{uuid.uuid4().hex[:6]}-named"
    control_plane.create_namespace(namespace)
    user = sa_user(namespace, "candidate")
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "named-create", "namespace": namespace},
        "rules": [
            {
                "apiGroups": ["coordination.k8s.io"],
                "resources": ["leases"],
                "resourceNames": ["the-lease"],
                "verbs": ["create", "get", "update"],
            }
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "named-create", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "named-create"},
        "subjects": [{"kind": "ServiceAccount", "name": "candidate", "namespace": namespace}],
    }
    install_rbac(control_plane, [role, binding])
    deadline = time.monotonic() + 30  # the role is in effect (RBAC is read from a cache) ...
    while not can_i(control_plane, user, "get", "leases.coordination.k8s.io/the-lease", "-n", namespace):
        assert time.monotonic() < deadline, "the Role never took effect"
        time.sleep(0.2)
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "the-lease"}, "spec": {}}
    created = control_plane.kubectl(
        "create", "-n", namespace, f"--as={user}", "-f", "-", input=json.dumps(lease), check=False
    )
    assert created.returncode != 0 and "forbidden" in created.stderr, created.stderr  # ... and still no create


# --- the gateway ------------------------------------------------------------------------------------------------


def gateway_rules(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every rule of the roles the chart binds to the gateway's ServiceAccount."""
    return [rule for obj in objects if obj["kind"] in ("Role", "ClusterRole") for rule in obj["rules"]]


def normalized(rules: Any) -> list[str]:
    return sorted(json.dumps({key: sorted(value) for key, value in rule.items()}, sort_keys=True) for rule in rules)


def test_gateway_roles_are_exactly_the_gateways_rules(helm: Helm) -> None:
    values = {"gateway.enabled": "true", "gateway.tokenReview": "true", "gateway.tokenReviewNamespaces[0]": "*"}
    objects = helm.template(set_values=values, show_only=["templates/gateway-rbac.yaml"])
    assert normalized(gateway_rules(objects)) == normalized(rbac.GATEWAY_RULES)
    # Without TokenReview the chart grants that much less.
    without = helm.template(set_values={"gateway.enabled": "true"}, show_only=["templates/gateway-rbac.yaml"])
    assert normalized(gateway_rules(without)) == normalized(rbac.MEDIAGENERATION_RULES + rbac.TOKEN_SECRET_RULES)


def test_the_aggregated_apis_rbac_is_exactly_the_patterns(helm: Helm) -> None:
    values = {"gateway.enabled": "true", "apiService.enabled": "true"}
    objects = helm.template(set_values=values, show_only=["templates/apiservice-rbac.yaml"])

    def bare(obj: dict[str, Any]) -> dict[str, Any]:
        return {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "labels"}}

    def key(obj: dict[str, Any]) -> str:
        return f"{obj['kind']}/{obj['metadata']['name']}"

    expected = rbac.aggregated_manifests("mediagen")
    assert sorted(map(bare, objects), key=key) == sorted(map(bare, expected), key=key)
    closed = helm.template(
        set_values={**values, "apiService.openToAuthenticated": "false"}, show_only=["templates/apiservice-rbac.yaml"]
    )
    assert [o["roleRef"]["name"] for o in closed] == [
        "system:auth-delegator",
        "extension-apiserver-authentication-reader",
    ]


def test_gateway_may_do_only_what_it_uses(
    control_plane: ControlPlane, api: None, helm: Helm, other_namespace: str
) -> None:
    tag = uuid.uuid4().hex[:6]
    namespace, tenant = f"rbac-{tag}-sys", f"rbac-{tag}-tenant"
    for name in (namespace, tenant):
        control_plane.create_namespace(name)
    values = {"gateway.enabled": "true", "gateway.namespaces[0]": tenant}
    templates = ["templates/gateway-rbac.yaml", "templates/serviceaccounts.yaml"]
    objects = helm.template(f"rbac-{tag}", namespace, set_values=values, show_only=templates)
    install_rbac(control_plane, objects)
    user = sa_user(namespace, service_account(objects, "-gateway"))
    inside, own, other = ("-n", tenant), ("-n", namespace), ("-n", other_namespace)
    check_can_i(
        control_plane,
        user,
        [
            *[(True, verb, MG, inside) for verb in ("create", "get", "list", "patch")],
            (True, "get", f"secrets/{rbac.TOKEN_SECRET}", own),
            # Tenants only: not other namespaces.
            *[(False, verb, MG, other) for verb in ("create", "get", "list", "patch")],
            # Never delete, update, watch or write status: the operator alone writes status.
            *[(False, verb, MG, inside) for verb in ("delete", "update", "watch", "deletecollection")],
            (False, "patch", MG, ("--subresource=status", *inside)),
            # One Secret, by name, in its own namespace; no other Secret anywhere.
            (False, "list", "secrets", own),
            (False, "get", "secrets/another-secret", own),
            (False, "update", f"secrets/{rbac.TOKEN_SECRET}", own),
            (False, "get", f"secrets/{rbac.TOKEN_SECRET}", other),
            (False, "get", f"secrets/{rbac.TOKEN_SECRET}", inside),
            (False, "list", "secrets", ("--all-namespaces",)),
            # Nothing else.
            (False, "create", "tokenreviews.authentication.k8s.io", ()),  # gateway.tokenReview is off
            (False, "get", "pods", inside),
            (False, "create", "events", inside),
            (False, "list", "namespaces", ()),
            (False, "create", "rolebindings.rbac.authorization.k8s.io", inside),
        ],
    )
