"""The deployment files pass their static checks, and each check fails on a real defect.

The checks live in scripts/deploy_checks.py (scripts/check-deploy.sh runs them in CI and
installs kustomize and promtool into .cache/bin first). Each defect test breaks a copy of a
real file the way a hurried edit would and expects the check to say so.
"""

from __future__ import annotations

import copy
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location(
    "deploy_checks", REPO / "scripts" / "deploy_checks.py"
)
assert _spec is not None and _spec.loader is not None
checks: Any = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(checks)


def _need(tool: str, found: bool) -> None:
    """Without the tool: fail in CI (scripts/test.sh installs it), skip elsewhere."""
    if not found:
        message = f"{tool} not installed: run scripts/check-deploy.sh --install-only"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def kustomize() -> str:
    try:
        return str(checks.kustomize_binary())
    except FileNotFoundError:
        _need("kustomize", False)
        raise


@pytest.fixture(scope="module")
def promtool() -> str:
    found = checks.promtool_binary()
    _need("promtool", found is not None)
    return str(found)


def _edit(source: Path, target: Path, old: str, new: str) -> Path:
    text = source.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {source}"
    target.write_text(text.replace(old, new, 1), encoding="utf-8")
    return target


# ---------------------------------------------------------------- compose


def test_the_compose_file_passes_its_checks() -> None:
    assert checks.check_compose_schema() == []
    assert checks.check_compose_environment() == []


def test_the_compose_schema_check_rejects_a_misspelt_key(tmp_path: Path) -> None:
    broken = _edit(checks.COMPOSE, tmp_path / "compose.yml", "    healthcheck:", "    healthchek:")
    problems = checks.check_compose_schema(broken)
    assert problems and "healthchek" in problems[0]


def test_the_compose_schema_check_rejects_an_unknown_depends_on_condition(tmp_path: Path) -> None:
    broken = _edit(
        checks.COMPOSE,
        tmp_path / "compose.yml",
        "{condition: service_completed_successfully}",
        "{condition: service_finished}",
    )
    assert checks.check_compose_schema(broken)


def test_the_environment_check_rejects_a_variable_no_service_reads(tmp_path: Path) -> None:
    broken = _edit(
        checks.COMPOSE,
        tmp_path / "compose.yml",
        "DUBAN_PROGRESS_DATABASE_URL:",
        "DUBAN_PROGRES_DATABASE_URL:",
    )
    problems = "\n".join(checks.check_compose_environment(broken))
    assert "DUBAN_PROGRES_DATABASE_URL is not a setting progress reads" in problems
    # and without its database URL, progress refuses to start in production
    assert "progress refuses its settings" in problems


def test_the_environment_check_rejects_another_services_setting(tmp_path: Path) -> None:
    broken = _edit(
        checks.COMPOSE,
        tmp_path / "compose.yml",
        "  DUBAN_PROGRESS_NOTIFIER_URL:",
        "  DUBAN_NOTIFIER_SMTP_HOST: mailpit\n  DUBAN_PROGRESS_NOTIFIER_URL:",
    )
    problems = checks.check_compose_environment(broken)
    assert any("DUBAN_NOTIFIER_SMTP_HOST is not a setting progress reads" in p for p in problems)


def test_the_environment_check_rejects_an_invalid_value(tmp_path: Path) -> None:
    broken = _edit(
        checks.COMPOSE,
        tmp_path / "compose.yml",
        'DUBAN_NOTIFIER_SMTP_PORT: "1025"',
        'DUBAN_NOTIFIER_SMTP_PORT: "smtp"',
    )
    problems = "\n".join(checks.check_compose_environment(broken))
    assert "notifier refuses its settings" in problems and "smtp_port" in problems


def test_the_environment_check_rejects_an_exporter_the_services_lack(tmp_path: Path) -> None:
    broken = _edit(
        checks.COMPOSE,
        tmp_path / "compose.yml",
        "OTEL_EXPORTER_OTLP_PROTOCOL: http/protobuf",
        "OTEL_EXPORTER_OTLP_PROTOCOL: grpc",
    )
    assert any(
        "OTEL_EXPORTER_OTLP_PROTOCOL=grpc" in p for p in checks.check_compose_environment(broken)
    )


def test_the_environment_check_follows_the_settings_classes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A renamed setting breaks the check: the names come from the imported classes."""
    from duban_shared.settings import ServiceSettings
    from notifier.settings import NotifierSettings
    from pydantic_settings import SettingsConfigDict
    from registry.settings import RegistrySettings

    class Renamed(ServiceSettings):
        """Progress as if `notifier_url` had been renamed `notifier_base_url`."""

        model_config = SettingsConfigDict(
            env_prefix="DUBAN_PROGRESS_", extra="ignore", populate_by_name=True
        )
        database_url: str = "sqlite+aiosqlite:///.run/progress.db"
        notifier_base_url: str = "http://127.0.0.1:8003"
        trace_ui_url: str | None = None

    monkeypatch.setattr(
        checks,
        "_settings_classes",
        lambda: {"registry": RegistrySettings, "progress": Renamed, "notifier": NotifierSettings},
    )
    problems = checks.check_compose_environment()
    assert any("DUBAN_PROGRESS_NOTIFIER_URL is not a setting progress reads" in p for p in problems)


def test_nested_channel_settings_are_known_and_checked() -> None:
    assert (
        checks.unknown_variables(
            "notifier",
            {
                "DUBAN_NOTIFIER_CHANNELS__WECOM__ROBOTS",
                "DUBAN_NOTIFIER_CHANNELS__ALIYUN_SMS__ACCESS_KEY_ID",
                "DUBAN_ENVIRONMENT",
                "OTEL_SERVICE_NAME",
            },
        )
        == []
    )
    assert checks.unknown_variables("notifier", {"DUBAN_NOTIFIER_CHANNELS__WECHAT__ROBOTS"})


# ---------------------------------------------------------------- Dockerfile


def test_the_dockerfile_passes_hadolint_and_its_variables_are_settings() -> None:
    assert checks.check_dockerfile() == []
    assert checks.check_dockerfile_environment() == []


def test_hadolint_rejects_an_unpinned_root_image(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "FROM quay.io/someone/python:latest\n"
        "RUN apt-get update && apt-get install -y gcc\n"
        "COPY . /app\n"
        'CMD ["python", "/app/main.py"]\n',
        encoding="utf-8",
    )
    problems = "\n".join(checks.check_dockerfile(dockerfile))
    for rule in ("DL3007", "DL3008", "DL3026"):  # latest tag, unpinned apt, untrusted registry
        assert rule in problems


def test_the_dockerfile_variable_check_rejects_a_misspelt_setting(tmp_path: Path) -> None:
    broken = _edit(
        checks.DOCKERFILE, tmp_path / "Dockerfile", "DUBAN_CALENDAR_DIR=", "DUBAN_CALENDAR_DIRS="
    )
    assert any("DUBAN_CALENDAR_DIRS" in p for p in checks.check_dockerfile_environment(broken))


def test_service_images_install_only_pinned_packages() -> None:
    """The image installs a service's dependency tree with requirements.lock as constraints;
    a dependency missing from the lock would come in unpinned."""
    pins = {}
    for line in (REPO / "requirements.lock").read_text(encoding="utf-8").splitlines():
        if "==" in line:
            name, version = line.split("==", 1)
            pins[canonicalize_name(name)] = version.strip()
    missing: set[str] = set()
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(f"duban-{s}", frozenset[str]()) for s in checks.SERVICES]
    while todo:
        name, extras = todo.pop()
        key = canonicalize_name(name)
        if (key, extras) in seen:
            continue
        seen.add((key, extras))
        if not key.startswith("duban-") and key not in pins:
            missing.add(name)
            continue
        for requirement in importlib.metadata.requires(name) or []:
            req = Requirement(requirement)
            wanted = [{"extra": e} for e in extras] or [{"extra": ""}]
            if req.marker is None or any(req.marker.evaluate(env) for env in wanted):
                todo.append((req.name, frozenset(req.extras)))
    assert not missing, f"not pinned in requirements.lock: {sorted(missing)}"


# ---------------------------------------------------------------- Kubernetes


@pytest.mark.parametrize("kustomization", checks.overlays(), ids=lambda p: p.name)
def test_each_kustomization_builds_and_validates(kustomize: str, kustomization: Path) -> None:
    docs, problems = checks.kustomize_build(kustomization)
    assert problems == []
    complete = kustomization.name != "base"
    assert checks.check_kubernetes_schemas(docs) == []
    assert checks.check_kubernetes_policy(docs, complete=complete) == []
    assert checks.check_kubernetes_environment(docs, complete=complete) == []


@pytest.fixture(scope="module")
def production(kustomize: str) -> list[dict[str, Any]]:
    docs, problems = checks.kustomize_build(checks.K8S / "overlays" / "production")
    assert problems == []
    return docs  # type: ignore[no-any-return]


def _find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def test_the_schema_check_rejects_unknown_fields_and_wrong_types(
    production: list[dict[str, Any]],
) -> None:
    docs = copy.deepcopy(production)
    container = _find(docs, "Deployment", "registry")["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    _find(docs, "Deployment", "progress")["spec"]["replicas"] = "six"
    problems = "\n".join(checks.check_kubernetes_schemas(docs))
    assert "Deployment/registry" in problems and "readinesProbe" in problems
    assert "Deployment/progress" in problems and "six" in problems


def test_the_kubernetes_policy_catches_unsafe_or_wrong_workloads(
    production: list[dict[str, Any]],
) -> None:
    docs = copy.deepcopy(production)
    registry = _find(docs, "Deployment", "registry")["spec"]["template"]["spec"]
    del registry["containers"][0]["livenessProbe"]
    registry["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = False
    registry["securityContext"]["runAsNonRoot"] = False
    notifier = _find(docs, "Deployment", "notifier")["spec"]["template"]["spec"]
    notifier["containers"][0]["envFrom"][-1]["secretRef"]["name"] = "notifer-secrets"
    _find(docs, "Deployment", "progress-worker")["spec"]["replicas"] = 8
    docs.remove(_find(docs, "PodDisruptionBudget", "notifier"))
    problems = "\n".join(checks.check_kubernetes_policy(docs, complete=True))
    for expected in (
        "Deployment/registry container registry: no livenessProbe",
        "Deployment/registry container registry: readOnlyRootFilesystem is not true",
        "Deployment/registry: pod securityContext.runAsNonRoot is not true",
        "Secret 'notifer-secrets' does not exist",
        "Deployment/progress-worker has 8 replicas but duban.status.v1 has 6 partitions",
        "Deployment/notifier: no PodDisruptionBudget",
    ):
        assert expected in problems


def test_progress_api_and_worker_are_laid_out_as_each_other_expects(
    production: list[dict[str, Any]],
) -> None:
    assert checks.check_kubernetes_policy(production, complete=True) == []
    api = _find(production, "Deployment", "progress")
    assert (
        checks.status_partitions()
        >= _find(production, "Deployment", "progress-worker")["spec"]["replicas"]
    )

    both = copy.deepcopy(production)  # the API consuming too, beside the worker
    env = _find(both, "Deployment", "progress")["spec"]["template"]["spec"]["containers"][0]["env"]
    env[:] = [e for e in env if e["name"] != "DUBAN_PROGRESS_BACKGROUND"]
    problems = "\n".join(checks.check_kubernetes_policy(both, complete=True))
    assert "set DUBAN_PROGRESS_BACKGROUND=false" in problems

    nobody = copy.deepcopy(production)  # the API only, no worker
    nobody.remove(_find(nobody, "Deployment", "progress-worker"))
    nobody.remove(_find(nobody, "PodDisruptionBudget", "progress-worker"))
    problems = "\n".join(checks.check_kubernetes_policy(nobody, complete=True))
    assert "nothing consumes duban.status.v1" in problems
    assert api["spec"]["template"]["spec"]["containers"][0]["args"][0] == "serve"


def test_the_kubernetes_environment_check_reads_configmaps_and_secrets(
    production: list[dict[str, Any]],
) -> None:
    docs = copy.deepcopy(production)
    config = next(
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("progress-config")
    )
    config["data"]["DUBAN_PROGRESS_SWEEP_INTERVAL"] = "60"
    secret = next(
        d
        for d in docs
        if d["kind"] == "Secret" and d["metadata"]["name"].startswith("notifier-secrets")
    )
    del secret["data"]["DUBAN_NOTIFIER_ACK_SECRET"]
    problems = "\n".join(checks.check_kubernetes_environment(docs))
    assert "DUBAN_PROGRESS_SWEEP_INTERVAL is not a setting progress reads" in problems
    assert "DUBAN_NOTIFIER_ACK_SECRET" in problems  # production refuses the development secret


def test_kustomize_build_fails_on_a_broken_kustomization(kustomize: str, tmp_path: Path) -> None:
    shutil.copytree(
        checks.DEPLOY, tmp_path / "deploy", ignore=shutil.ignore_patterns("kafka", "jaeger")
    )
    base = tmp_path / "deploy" / "k8s" / "base"
    _edit(
        base / "kustomization.yaml",
        base / "kustomization.yaml",
        "  - notifier.yaml",
        "  - notifer.yaml",
    )
    docs, problems = checks.kustomize_build(base)
    assert docs == [] and problems and "notifer.yaml" in problems[0]


# ---------------------------------------------------------------- telemetry configs


def test_the_observability_configs_pass_their_checks() -> None:
    assert checks.check_collector_config() == []
    assert checks.check_prometheus_config() == []
    assert checks.check_dashboards_and_alerts() == []


def test_the_collector_check_rejects_an_undefined_exporter(tmp_path: Path) -> None:
    broken = _edit(
        checks.COLLECTOR_CONFIG,
        tmp_path / "config.yaml",
        "exporters: [otlp/jaeger]",
        "exporters: [jaeger]",
    )
    problems = checks.check_collector_config(broken)
    assert problems == ["config.yaml: pipeline traces uses exporter 'jaeger', which is not defined"]


def test_the_prometheus_check_wants_every_service_scraped(tmp_path: Path) -> None:
    broken = _edit(
        checks.PROMETHEUS_CONFIG, tmp_path / "prometheus.yml", '"progress:8000"', '"progres:8000"'
    )
    (tmp_path / "alerts.yml").write_text("groups: []\n", encoding="utf-8")
    assert checks.check_prometheus_config(broken) == [
        "prometheus.yml: nothing scrapes progress:8000/metrics"
    ]


def test_the_dashboard_check_catches_a_renamed_metric(tmp_path: Path) -> None:
    dashboards = tmp_path / "dashboards"
    dashboards.mkdir()
    for file in checks.DASHBOARDS.glob("*.json"):
        _edit(file, dashboards / file.name, "duban_consumer_lag{", "duban_kafka_consumer_lag{")
    problems = checks.check_dashboards_and_alerts(dashboards=dashboards)
    assert "dashboards query duban_kafka_consumer_lag, which no service exports" in problems
    assert "no dashboard panel shows duban_consumer_lag" in problems


def test_the_expected_metric_names_are_the_instruments_of_duban_shared() -> None:
    """Prometheus names are the OTel names with dots as underscores, then unit and _total."""
    from duban_shared import metrics

    instruments = {
        value.replace(".", "_")
        for key, value in vars(metrics).items()
        if key.isupper() and isinstance(value, str) and value.startswith("duban.")
    }
    for name in checks.EXPECTED_METRICS:
        assert re.sub(r"_(total|seconds)$", "", name) in instruments, name


def test_promtool_checks_the_rules_and_their_unit_tests(promtool: str, tmp_path: Path) -> None:
    assert checks.check_promtool() == []
    prometheus = tmp_path / "prometheus"
    shutil.copytree(checks.PROMETHEUS_CONFIG.parent, prometheus)
    rules = prometheus / "alerts.yml"
    # a PromQL syntax error
    _edit(
        checks.ALERT_RULES,
        rules,
        "sum by (duban_notification_channel) (rate(",
        "sum by (duban_notification_channel (rate(",
    )
    problems = checks.check_promtool(
        prometheus / "prometheus.yml", rules, prometheus / "alerts.test.yml"
    )
    assert any("promtool check rules" in p for p in problems)
    # a rule that parses but no longer fires when a third of the e-mails fail
    _edit(checks.ALERT_RULES, rules, "  > 0.1\n", "  > 0.5\n")
    problems = checks.check_promtool(
        prometheus / "prometheus.yml", rules, prometheus / "alerts.test.yml"
    )
    assert len(problems) == 1 and "promtool test rules" in problems[0]
    assert "DubanNotificationsFailing" in problems[0]


def test_the_compose_stack_mounts_the_files_that_exist() -> None:
    """Every ./ bind mount of the compose file points at a file or folder of the repository."""
    compose = yaml.safe_load(checks.COMPOSE.read_text(encoding="utf-8"))
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name}: {source}"


def test_the_topics_job_creates_every_topic_of_topics_txt(tmp_path: Path) -> None:
    """The kafka-topics job's script, run with a stand-in for kafka-topics.sh."""
    compose = yaml.safe_load(checks.COMPOSE.read_text(encoding="utf-8"))
    job = compose["services"]["kafka-topics"]
    assert job["entrypoint"] == ["/bin/bash", "-c"]
    log = tmp_path / "calls"
    stub = tmp_path / "kafka-topics.sh"
    stub.write_text(f'#!/bin/bash\necho "$*" >> {log}\n', encoding="utf-8")
    stub.chmod(0o755)
    script = (
        job["command"][0]
        .replace("$$", "$")  # compose's escape of a literal $
        .replace("/opt/kafka/bin/kafka-topics.sh", str(stub))
        .replace("/topics.txt", str(checks.TOPICS))
    )
    subprocess.run(["/bin/bash", "-c", script], check=True)
    calls = log.read_text(encoding="utf-8").splitlines()
    expected = []
    for line in checks.TOPICS.read_text(encoding="utf-8").splitlines():
        fields = line.split("#", 1)[0].split()
        if fields:
            expected.append(fields)
    assert len(calls) == len(expected)
    for call, (name, partitions, *configs) in zip(calls, expected, strict=True):
        assert f"--topic {name} --partitions {partitions} --replication-factor 1" in call
        assert "--create --if-not-exists" in call
        for config in configs:
            assert f"--config {config}" in call
