"""Pod Security Standards checks, version gating, Kyverno's exclusions and failure messages."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from gate.errors import InvalidArgument
from policies._pss import LATEST_VERSION, PssViolation, apply_exclusions, check_pod, format_message

REPO = Path(__file__).resolve().parents[3]
SHARED = REPO / ".." / "shared"
ASSETS = REPO / "tests" / "assets" / "policies" / "pss"


def _pod(spec: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "p", "namespace": "default"}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def _container(name: str = "app", image: str = "nginx:1.27", **security: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": name, "image": image}
    if security:
        container["securityContext"] = security
    return container


RESTRICTED_OK = {
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
    "capabilities": {"drop": ["ALL"]},
}


def _restricted_container(name: str = "app", image: str = "nginx:1.27", **overrides: Any) -> dict[str, Any]:
    security = copy.deepcopy(RESTRICTED_OK)
    security.update(overrides)
    return {"name": name, "image": image, "securityContext": security}


def _fb(path: str, value: str) -> str:
    return f"{path} is forbidden, forbidden values found: {value}"


def _controls(violations: list[PssViolation]) -> list[str]:
    return [v.control for v in violations]


def _mixed_pod() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ASSETS / "mixed-pod.yaml").read_text())
    return loaded


def _admission_pod() -> dict[str, Any]:
    review = json.loads((SHARED / "notes" / "admission_review.json").read_text())
    pod: dict[str, Any] = review["request"]["object"]
    return pod


# --------------------------------------------------------------------------- baseline controls


@pytest.mark.parametrize(
    ("spec", "annotations", "control", "message"),
    [
        (
            {"hostNetwork": True, "containers": [_container()]},
            None,
            "Host Namespaces",
            _fb("spec.hostNetwork", "true"),
        ),
        (
            {"containers": [_container(privileged=True)]},
            None,
            "Privileged Containers",
            _fb("spec.containers[0].securityContext.privileged", "true"),
        ),
        (
            {"containers": [_container(capabilities={"add": ["SYS_ADMIN", "CHOWN", "NET_RAW"]})]},
            None,
            "Capabilities",
            _fb("spec.containers[0].securityContext.capabilities.add", "[NET_RAW SYS_ADMIN]"),
        ),
        (
            {"volumes": [{"name": "h", "hostPath": {"path": "/etc"}}], "containers": [_container()]},
            None,
            "HostPath Volumes",
            _fb("spec.volumes[0].hostPath", "/etc"),
        ),
        (
            {"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 80, "hostPort": 8080}]}]},
            None,
            "Host Ports",
            _fb("spec.containers[0].ports[0].hostPort", "8080"),
        ),
        (
            {"containers": [_container()]},
            {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"},
            "AppArmor",
            "metadata.annotations[container.apparmor.security.beta.kubernetes.io/app] is forbidden, "
            "forbidden values found: unconfined",
        ),
        (
            {"containers": [_container(appArmorProfile={"type": "Unconfined"})]},
            None,
            "AppArmor",
            _fb("spec.containers[0].securityContext.appArmorProfile.type", "Unconfined"),
        ),
        (
            {"containers": [_container(seLinuxOptions={"type": "spc_t", "user": "root"})]},
            None,
            "SELinux",
            _fb("spec.containers[0].securityContext.seLinuxOptions.type", "spc_t"),
        ),
        (
            {"containers": [_container(procMount="Unmasked")]},
            None,
            "/proc Mount Type",
            _fb("spec.containers[0].securityContext.procMount", "Unmasked"),
        ),
        (
            {"securityContext": {"seccompProfile": {"type": "Unconfined"}}, "containers": [_container()]},
            None,
            "Seccomp",
            _fb("spec.securityContext.seccompProfile.type", "Unconfined"),
        ),
        (
            {
                "securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]},
                "containers": [_container()],
            },
            None,
            "Sysctls",
            _fb("spec.securityContext.sysctls[0].name", "kernel.msgmax"),
        ),
        (
            {"securityContext": {"windowsOptions": {"hostProcess": True}}, "containers": [_container()]},
            None,
            "HostProcess",
            _fb("spec.securityContext.windowsOptions.hostProcess", "true"),
        ),
        (
            {
                "containers": [
                    {
                        "name": "a",
                        "image": "x",
                        "livenessProbe": {"httpGet": {"host": "10.0.0.1", "port": 80}},
                    }
                ]
            },
            None,
            "Host Probes / Lifecycle Hooks",
            _fb("spec.containers[0].livenessProbe.httpGet.host", "10.0.0.1"),
        ),
    ],
)
def test_baseline_control_reports_the_offending_field(
    spec: dict[str, Any], annotations: dict[str, str] | None, control: str, message: str
) -> None:
    violations = check_pod(_pod(spec, annotations), level="baseline", version="latest")
    assert violations, "expected a violation"
    assert violations[0].control == control
    assert violations[0].message == message


def test_baseline_passes_a_plain_pod_and_allowed_values() -> None:
    pod = _pod(
        {
            "hostNetwork": False,
            "securityContext": {
                "seccompProfile": {"type": "RuntimeDefault"},
                "sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"}],
                "seLinuxOptions": {"type": "container_t"},
            },
            "containers": [
                _container(
                    privileged=False, capabilities={"add": ["CHOWN", "NET_BIND_SERVICE"]}, procMount="Default"
                ),
                {"name": "b", "image": "x", "ports": [{"containerPort": 80, "hostPort": 0}]},
            ],
            "volumes": [{"name": "c", "configMap": {"name": "c"}}],
        },
        {"container.apparmor.security.beta.kubernetes.io/app": "runtime/default"},
    )
    assert check_pod(pod, level="baseline", version="latest") == []


def test_container_level_violation_names_the_image_and_starred_field() -> None:
    pod = _pod(
        {"initContainers": [_container("init", "busybox:1", privileged=True)], "containers": [_container()]}
    )
    [violation] = check_pod(pod, level="baseline", version="latest")
    assert violation == PssViolation(
        control="Privileged Containers",
        images=("busybox:1",),
        restricted_field="spec.initContainers[*].securityContext.privileged",
        values=("true",),
        message=_fb("spec.initContainers[0].securityContext.privileged", "true"),
    )


def test_containers_are_visited_init_then_regular_then_ephemeral() -> None:
    pod = _pod(
        {
            "containers": [_container("c", privileged=True)],
            "ephemeralContainers": [_container("e", privileged=True)],
            "initContainers": [_container("i", privileged=True)],
        }
    )
    fields = [v.message.split(" ")[0] for v in check_pod(pod, level="baseline", version="latest")]
    assert fields == [
        "spec.initContainers[0].securityContext.privileged",
        "spec.containers[0].securityContext.privileged",
        "spec.ephemeralContainers[0].securityContext.privileged",
    ]


# --------------------------------------------------------------------------- restricted controls


def test_restricted_passes_a_fully_hardened_pod() -> None:
    pod = _pod({"containers": [_restricted_container()], "volumes": [{"name": "t", "emptyDir": {}}]})
    assert check_pod(pod, level="restricted", version="latest") == []


def test_restricted_reports_every_unset_field_of_a_bare_container() -> None:
    violations = check_pod(_pod({"containers": [_container()]}), level="restricted", version="latest")
    assert [(v.control, v.message) for v in violations] == [
        (
            "Privilege Escalation",
            "spec.containers[0].securityContext.allowPrivilegeEscalation: Required value",
        ),
        ("Capabilities", "spec.containers[0].securityContext.capabilities.drop: Required value"),
        ("Running as Non-root", "spec.containers[0].securityContext.runAsNonRoot: Required value"),
        ("Seccomp", "spec.containers[0].securityContext.seccompProfile.type: Required value"),
    ]


@pytest.mark.parametrize(
    ("container", "control", "message"),
    [
        (
            _restricted_container(allowPrivilegeEscalation=True),
            "Privilege Escalation",
            _fb("spec.containers[0].securityContext.allowPrivilegeEscalation", "true"),
        ),
        (
            _restricted_container(allowPrivilegeEscalation=None),
            "Privilege Escalation",
            _fb("spec.containers[0].securityContext.allowPrivilegeEscalation", "nil"),
        ),
        (
            _restricted_container(capabilities={"drop": ["NET_RAW", "CHOWN"]}),
            "Capabilities",
            _fb("spec.containers[0].securityContext.capabilities.drop", "[CHOWN NET_RAW]"),
        ),
        (
            _restricted_container(runAsNonRoot=False),
            "Running as Non-root",
            _fb("spec.containers[0].securityContext.runAsNonRoot", "false"),
        ),
        (
            _restricted_container(runAsUser=0),
            "Running as Non-root user",
            _fb("spec.containers[0].securityContext.runAsUser", "0"),
        ),
        (
            _restricted_container(seccompProfile={"type": "Unconfined"}),
            "Seccomp",
            _fb("spec.containers[0].securityContext.seccompProfile.type", "Unconfined"),
        ),
    ],
)
def test_restricted_control_reports_the_offending_field(
    container: dict[str, Any], control: str, message: str
) -> None:
    violations = check_pod(_pod({"containers": [container]}), level="restricted", version="latest")
    assert (control, message) in [(v.control, v.message) for v in violations]


def test_restricted_adding_a_capability_fails_both_capability_checks() -> None:
    pod = _pod({"containers": [_restricted_container(capabilities={"drop": ["ALL"], "add": ["SYS_ADMIN"]})]})
    violations = check_pod(pod, level="restricted", version="latest")
    assert _controls(violations) == ["Capabilities", "Capabilities"]
    assert "non-default capabilities" in format_message(violations)
    assert "unrestricted capabilities" in format_message(violations)


def test_restricted_net_bind_service_is_the_only_addable_capability() -> None:
    pod = _pod(
        {"containers": [_restricted_container(capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]})]}
    )
    assert check_pod(pod, level="restricted", version="latest") == []


def test_restricted_pod_level_settings_cover_containers() -> None:
    pod = _pod(
        {
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "Localhost"}},
            "containers": [
                {
                    "name": "a",
                    "image": "x",
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                }
            ],
        }
    )
    assert check_pod(pod, level="restricted", version="latest") == []


def test_restricted_explicit_bad_seccomp_hides_unset_containers() -> None:
    pod = _pod(
        {
            "containers": [
                _restricted_container("a", seccompProfile={"type": "Unconfined"}),
                {
                    "name": "b",
                    "image": "x",
                    "securityContext": {k: v for k, v in RESTRICTED_OK.items() if k != "seccompProfile"},
                },
            ]
        }
    )
    seccomp = [
        v.message for v in check_pod(pod, level="restricted", version="latest") if v.control == "Seccomp"
    ]
    # The baseline check and the restricted check each report only the explicit bad value.
    assert seccomp == [
        _fb("spec.containers[0].securityContext.seccompProfile.type", "Unconfined"),
        _fb("spec.containers[0].securityContext.seccompProfile.type", "Unconfined"),
    ]


@pytest.mark.parametrize(
    ("volume", "message"),
    [
        ({"name": "n", "nfs": {"server": "s", "path": "/"}}, "spec.volumes[0].nfs: Forbidden"),
        ({"name": "bare"}, "spec.volumes[0].unknown: Forbidden"),
    ],
)
def test_restricted_volume_types_forbid_other_sources(volume: dict[str, Any], message: str) -> None:
    pod = _pod({"containers": [_restricted_container()], "volumes": [volume]})
    assert [(v.control, v.message) for v in check_pod(pod, level="restricted", version="latest")] == [
        ("Volume Types", message)
    ]


def test_restricted_host_path_fails_both_volume_controls() -> None:
    pod = _pod(
        {"containers": [_restricted_container()], "volumes": [{"name": "h", "hostPath": {"path": "/"}}]}
    )
    assert _controls(check_pod(pod, level="restricted", version="latest")) == [
        "HostPath Volumes",
        "Volume Types",
    ]


def test_privileged_level_checks_nothing() -> None:
    pod = _pod({"hostPID": True, "containers": [_container(privileged=True)]})
    assert check_pod(pod, level="privileged", version="latest") == []


def test_baseline_level_skips_restricted_controls() -> None:
    assert check_pod(_pod({"containers": [_container()]}), level="baseline", version="latest") == []


# --------------------------------------------------------------------------- versions


def _has(pod: dict[str, Any], control: str, level: str, version: str) -> bool:
    return control in _controls(check_pod(pod, level=level, version=version))


def test_latest_and_empty_version_are_the_newest_standard() -> None:
    pod = _pod(
        {
            "containers": [
                {"name": "a", "image": "x", "readinessProbe": {"tcpSocket": {"host": "h", "port": 1}}}
            ]
        }
    )
    assert check_pod(pod, level="baseline", version="") == check_pod(
        pod, level="baseline", version=LATEST_VERSION
    )
    assert check_pod(pod, level="baseline", version="latest") == check_pod(
        pod, level="baseline", version="v1.99"
    )


def test_host_probes_control_exists_from_v1_34() -> None:
    pod = _pod(
        {
            "containers": [
                {"name": "a", "image": "x", "lifecycle": {"preStop": {"httpGet": {"host": "h", "port": 1}}}}
            ]
        }
    )
    assert _has(pod, "Host Probes / Lifecycle Hooks", "baseline", "v1.34")
    assert not _has(pod, "Host Probes / Lifecycle Hooks", "baseline", "v1.33")


def test_run_as_user_control_exists_from_v1_23() -> None:
    pod = _pod({"containers": [_restricted_container(runAsUser=0)]})
    assert _has(pod, "Running as Non-root user", "restricted", "v1.23")
    assert not _has(pod, "Running as Non-root user", "restricted", "v1.22")


def test_capabilities_and_privilege_escalation_start_at_their_versions() -> None:
    pod = _pod({"securityContext": {"runAsNonRoot": True}, "containers": [_container()]})
    assert _controls(check_pod(pod, level="restricted", version="v1.7")) == []
    assert _controls(check_pod(pod, level="restricted", version="v1.8")) == ["Privilege Escalation"]
    assert _controls(check_pod(pod, level="restricted", version="v1.21")) == [
        "Privilege Escalation",
        "Seccomp",
    ]
    assert "Capabilities" in _controls(check_pod(pod, level="restricted", version="v1.22"))


def test_seccomp_is_read_from_annotations_before_v1_19() -> None:
    pod = _pod({"containers": [_container()]}, {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"})
    [violation] = check_pod(pod, level="baseline", version="v1.18")
    assert violation.message == (
        _fb("metadata.annotations[seccomp.security.alpha.kubernetes.io/pod]", "unconfined")
    )
    assert check_pod(pod, level="baseline", version="v1.19") == []


def test_sysctl_allow_list_grows_with_versions() -> None:
    pod = _pod(
        {
            "securityContext": {"sysctls": [{"name": "net.ipv4.tcp_keepalive_time", "value": "1"}]},
            "containers": [],
        }
    )
    assert _has(pod, "Sysctls", "baseline", "v1.28")
    assert not _has(pod, "Sysctls", "baseline", "v1.29")
    rmem = _pod(
        {"securityContext": {"sysctls": [{"name": "net.ipv4.tcp_rmem", "value": "1"}]}, "containers": []}
    )
    assert _has(rmem, "Sysctls", "baseline", "v1.31")
    assert not _has(rmem, "Sysctls", "baseline", "v1.32")


def test_selinux_container_engine_type_is_allowed_from_v1_31() -> None:
    pod = _pod({"containers": [_container(seLinuxOptions={"type": "container_engine_t"})]})
    assert _has(pod, "SELinux", "baseline", "v1.30")
    assert not _has(pod, "SELinux", "baseline", "v1.31")


def test_windows_pods_are_exempt_from_linux_only_checks_from_v1_25() -> None:
    pod = _pod(
        {"os": {"name": "windows"}, "securityContext": {"runAsNonRoot": True}, "containers": [_container()]}
    )
    assert _controls(check_pod(pod, level="restricted", version="v1.24")) == [
        "Privilege Escalation",
        "Capabilities",
        "Seccomp",
    ]
    assert check_pod(pod, level="restricted", version="v1.25") == []


def test_user_namespace_pods_relax_proc_mount_and_root_checks_from_v1_35() -> None:
    pod = _pod(
        {
            "hostUsers": False,
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [_restricted_container(procMount="Unmasked", runAsNonRoot=None, runAsUser=0)],
        }
    )
    assert _controls(check_pod(pod, level="baseline", version="latest")) == []
    assert _controls(check_pod(pod, level="restricted", version="latest")) == ["/proc Mount Type"]
    assert _controls(check_pod(pod, level="restricted", version="v1.34")) == [
        "/proc Mount Type",
        "Running as Non-root",
        "Running as Non-root user",
    ]


@pytest.mark.parametrize(
    ("level", "version"),
    [
        ("strict", "latest"),
        ("Baseline", "latest"),
        ("baseline", "1.25"),
        ("baseline", "v2.0"),
        ("baseline", "v1.x"),
        ("baseline", "v1.025"),
    ],
)
def test_unknown_level_or_version_is_an_invalid_argument(level: str, version: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        check_pod(_pod({"containers": []}), level=level, version=version)
    assert raised.value.field in ("podSecurity.level", "podSecurity.version")
    assert repr(level if raised.value.field.endswith("level") else version) in raised.value.problem


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"containers": "nginx"}, "spec.containers"),
        ({"containers": [_container(privileged="true")]}, "spec.containers[0].securityContext.privileged"),
        (
            {"containers": [{"name": "a", "ports": [{"hostPort": "80"}]}]},
            "spec.containers[0].ports[0].hostPort",
        ),
        (
            {"containers": [_container(capabilities={"add": [1]})]},
            "spec.containers[0].securityContext.capabilities.add[0]",
        ),
        ({"containers": [], "volumes": [5]}, "spec.volumes[0]"),
        ({"containers": [_container(runAsUser=1.5)]}, "spec.containers[0].securityContext.runAsUser"),
    ],
)
def test_malformed_pod_field_is_an_invalid_argument_with_its_path(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        check_pod(_pod(spec), level="restricted", version="latest")
    assert raised.value.field == field


# --------------------------------------------------------------------------- exclusions


def _remaining(exclusions: list[dict[str, Any]]) -> list[str]:
    pod = _mixed_pod()
    violations = check_pod(pod, level="restricted", version="latest")
    return [v.message for v in apply_exclusions(violations, exclusions, pod)]


def test_pod_level_exclusion_removes_the_pod_level_control() -> None:
    remaining = _remaining([{"controlName": "Host Namespaces"}])
    assert not any("hostIPC" in m for m in remaining)
    assert len(remaining) == len(_remaining([])) - 1


def test_container_exclusion_matches_images_by_wildcard() -> None:
    remaining = _remaining([{"controlName": "Capabilities", "images": ["ghcr.io/acme/*"]}])
    capabilities = [m for m in remaining if "capabilities" in m]
    # Both capability checks lose the web container's error; the redis sidecar keeps its own.
    assert capabilities == [
        _fb("spec.containers[1].securityContext.capabilities.add", "[SYS_TIME]"),
        _fb("spec.containers[1].securityContext.capabilities.add", "[SYS_TIME]"),
    ]


def test_mixed_control_needs_both_exclusion_forms_to_be_exempt() -> None:
    container_only = _remaining([{"controlName": "Seccomp", "images": ["*redis*"]}])
    assert [m for m in container_only if "seccomp" in m] == [
        _fb("spec.securityContext.seccompProfile.type", "Unconfined"),
        _fb("spec.securityContext.seccompProfile.type", "Unconfined"),
    ]
    pod_only = _remaining([{"controlName": "Seccomp"}])
    assert [m for m in pod_only if "seccomp" in m] == [
        _fb("spec.containers[1].securityContext.seccompProfile.type", "Unconfined"),
        _fb("spec.containers[1].securityContext.seccompProfile.type", "Unconfined"),
    ]
    both = _remaining([{"controlName": "Seccomp"}, {"controlName": "Seccomp", "images": ["*"]}])
    assert not any("seccomp" in m for m in both)


def test_restricted_field_and_values_narrow_an_exclusion() -> None:
    narrowed = _remaining(
        [
            {
                "controlName": "Seccomp",
                "restrictedField": "spec.securityContext.seccompProfile.type",
                "values": ["Unconf*"],
            }
        ]
    )
    assert not any(m.startswith("spec.securityContext.seccompProfile") for m in narrowed)
    assert any(m.startswith("spec.containers[1].securityContext.seccompProfile") for m in narrowed)


def test_exclusion_values_that_do_not_match_keep_the_violation() -> None:
    assert _remaining([{"controlName": "Seccomp", "values": ["Localhost"]}]) == _remaining([])


def test_exclusion_restricted_field_of_another_field_keeps_the_violation() -> None:
    unchanged = _remaining(
        [
            {
                "controlName": "Capabilities",
                "images": ["*"],
                "restrictedField": "spec.containers[*].securityContext.capabilities.drop",
            }
        ]
    )
    assert unchanged == _remaining([])


def test_exclusion_of_unset_fields_by_image() -> None:
    pod = _pod({"containers": [_container("a", "nginx:1"), _container("b", "redis:7")]})
    violations = check_pod(pod, level="restricted", version="latest")
    remaining = apply_exclusions(
        violations,
        [
            {"controlName": "Privilege Escalation", "images": ["nginx*"]},
            {"controlName": "Running as Non-root", "images": ["nginx*"]},
        ],
        pod,
    )
    assert [
        v.message for v in remaining if "allowPrivilegeEscalation" in v.message or "runAsNonRoot" in v.message
    ] == [
        "spec.containers[1].securityContext.allowPrivilegeEscalation: Required value",
        "spec.containers[1].securityContext.runAsNonRoot: Required value",
    ]


def test_no_exclusions_or_no_violations_return_the_input() -> None:
    pod = _mixed_pod()
    violations = check_pod(pod, level="restricted", version="latest")
    assert apply_exclusions(violations, [], pod) == violations
    assert apply_exclusions([], [{"controlName": "Seccomp"}], pod) == []


@pytest.mark.parametrize(
    ("exclusion", "field"),
    [
        ({"controlName": "Privileged"}, "exclude[0].controlName"),
        ({"images": ["*"]}, "exclude[0].controlName"),
        ({"controlName": "Capabilities"}, "exclude[0].images"),
        ({"controlName": "Host Namespaces", "images": ["*"]}, "exclude[0].images"),
        ({"controlName": "Seccomp", "images": "nginx"}, "exclude[0].images"),
        ({"controlName": "Seccomp", "value": ["x"]}, "exclude[0].value"),
        ("Seccomp", "exclude[0]"),
    ],
)
def test_malformed_exclusion_is_an_invalid_argument(exclusion: Any, field: str) -> None:
    pod = _mixed_pod()
    with pytest.raises(InvalidArgument) as raised:
        apply_exclusions(check_pod(pod, level="restricted", version="latest"), [exclusion], pod)
    assert raised.value.field == field


# --------------------------------------------------------------------------- messages


def test_failure_message_is_kyvernos_format() -> None:
    pod = _pod({"hostIPC": True, "containers": [_container("web", privileged=True)]})
    violations = check_pod(pod, level="baseline", version="latest")
    assert format_message(violations, rule="baseline") == (
        "Validation rule 'baseline' failed. It violates PodSecurity \"baseline:latest\": "
        "(Forbidden reason: host namespaces, field error list: "
        "[spec.hostIPC is forbidden, forbidden values found: true])"
        "(Forbidden reason: privileged, field error list: "
        "[spec.containers[0].securityContext.privileged is forbidden, forbidden values found: true])"
    )


def test_failure_message_lists_several_errors_of_one_check() -> None:
    pod = _pod({"containers": [_container("a"), _container("b")]})
    violations = [
        v for v in check_pod(pod, level="restricted", version="v1.30") if v.control == "Running as Non-root"
    ]
    assert format_message(violations) == (
        "(Forbidden reason: runAsNonRoot != true, field error list: "
        "[spec.containers[0].securityContext.runAsNonRoot: Required value, "
        "spec.containers[1].securityContext.runAsNonRoot: Required value])"
    )
    assert 'PodSecurity "restricted:v1.30"' in format_message(violations, rule="r")


def test_failure_message_shows_controller_paths_under_the_template() -> None:
    violations = check_pod(
        _pod({"containers": [_container(privileged=True)]}), level="baseline", version="latest"
    )
    assert "[spec.template.spec.containers[0].securityContext.privileged is forbidden" in format_message(
        violations, kind="Deployment"
    )
    assert "[spec.jobTemplate.spec.template.spec.containers[0]" in format_message(violations, kind="CronJob")


# --------------------------------------------------------------------------- real inputs


def test_admission_review_pod_passes_restricted_and_fails_when_weakened() -> None:
    pod = _admission_pod()
    assert check_pod(pod, level="restricted", version="latest") == []
    weakened = copy.deepcopy(pod)
    weakened["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    weakened["spec"]["hostNetwork"] = True
    assert _controls(check_pod(weakened, level="restricted", version="latest")) == [
        "Privilege Escalation",
        "Host Namespaces",
    ]


def test_restricted_check_of_the_admission_review_pod_is_fast() -> None:
    pod = _admission_pod()
    batch = 500
    best = min(_time_batch(pod, batch) for _ in range(5))
    # About 50 microseconds of CPU per pod here; 200 is the budget. CPU time, not wall time,
    # so that other work on a shared machine does not count against it.
    assert best / batch < 200e-6, f"{best / batch * 1e6:.0f} us per pod"


def _time_batch(pod: dict[str, Any], batch: int) -> float:
    start = time.thread_time()
    for _ in range(batch):
        check_pod(pod, level="restricted", version="latest")
    return time.thread_time() - start


def _template(resource: dict[str, Any]) -> dict[str, Any]:
    if resource["kind"] == "Pod":
        return resource
    if resource["kind"] == "CronJob":
        template: dict[str, Any] = resource["spec"]["jobTemplate"]["spec"]["template"]
        return template
    pod_template: dict[str, Any] = resource["spec"]["template"]
    return pod_template


SUBRULE = SHARED / "conformance" / "kyverno" / "pod-security" / "subrule"
SUBRULE_CASES = sorted(
    str(p.parent.parent.relative_to(SUBRULE)) for p in SUBRULE.glob("**/.kyverno-test/kyverno-test.yaml")
)


def test_conformance_subrule_folders_are_present() -> None:
    assert len(SUBRULE_CASES) == 3, f"expected the 3 podSecurity folders under {SUBRULE}"


@pytest.mark.parametrize("folder", SUBRULE_CASES)
def test_conformance_pod_security_subrules_give_kyvernos_results(folder: str) -> None:
    base = SUBRULE / folder
    test = yaml.safe_load((base / ".kyverno-test" / "kyverno-test.yaml").read_text())
    [policy] = [yaml.safe_load((base / ".kyverno-test" / p).read_text()) for p in test["policies"]]
    resources = {}
    for name in test["resources"]:
        for document in yaml.safe_load_all((base / ".kyverno-test" / name).read_text()):
            resources[document["metadata"]["name"]] = document
    settings = policy["spec"]["rules"][0]["validate"]["podSecurity"]
    for row in test["results"]:
        for name in row["resources"]:
            pod = _template(resources[name])
            violations = check_pod(pod, level=settings["level"], version=settings.get("version", "latest"))
            remaining = apply_exclusions(violations, settings.get("exclude", []), pod)
            assert ("fail" if remaining else "pass") == row["result"], (
                f"{folder}/{name}: {format_message(remaining)}"
            )
