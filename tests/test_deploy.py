"""deploy/: every YAML file parses, and the replicated setup says what issue 10 asks."""

from __future__ import annotations

from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def _docs(path: Path) -> list[dict]:  # type: ignore[type-arg]
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def test_every_yaml_parses() -> None:
    files = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])
    assert files
    for path in files:
        assert _docs(path), path


def test_compose_runs_two_serve_replicas_with_health_checks() -> None:
    [compose] = _docs(DEPLOY / "compose.yaml")
    bot = compose["services"]["tallybot"]
    assert bot["command"][0] == "serve" and bot["deploy"]["replicas"] == 2
    assert "/readyz" in " ".join(bot["healthcheck"]["test"])
    assert "/healthz" in " ".join(compose["services"]["proxy"]["healthcheck"]["test"])
    assert "postgresql" in bot["environment"]["TALLYBOT_DATABASE_URL"]


def test_kubernetes_has_replicas_probes_secret_and_budget() -> None:
    kinds = {d["kind"]: d for d in _docs(DEPLOY / "k8s" / "tallybot.yaml")}
    deployment = kinds["Deployment"]
    assert deployment["spec"]["replicas"] == 2
    containers = {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}
    container = containers["tallybot"]
    # The code interpreter's sidecar gets no secrets and no database.
    sandbox = containers["sandbox"]
    assert "envFrom" not in sandbox and sandbox["args"][0] == "sandbox-server"
    assert {"name": "TALLYBOT_SANDBOX", "value": "container"} in container["env"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["envFrom"][0]["secretRef"]["name"] == "tallybot"
    assert kinds["PodDisruptionBudget"]["spec"]["minAvailable"] == 1
    [secret] = _docs(DEPLOY / "k8s" / "secret.yaml")
    assert secret["kind"] == "Secret"


def test_systemd_unit_serves() -> None:
    unit = (DEPLOY / "systemd" / "tallybot.service").read_text()
    assert "ExecStart=/opt/tallybot/bin/tallybot serve" in unit and "[Install]" in unit
