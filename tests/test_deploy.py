"""The deploy files people use: the Kubernetes manifests pass `kubernetes-validate --strict` offline (and a
wrong one does not), their probes name the service's own health routes, the HAProxy config parses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from api.app import create_app

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
VALIDATE = Path(sys.executable).with_name("kubernetes-validate")
OFFLINE = os.environ | {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
                        "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}  # fmt: skip


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VALIDATE), "--strict", "--quiet", str(path)], capture_output=True, text=True,
                          env=OFFLINE, timeout=120)  # fmt: skip


def _documents() -> list[dict]:
    return [d for path in MANIFESTS for d in yaml.safe_load_all(path.read_text("utf-8")) if d]


def test_the_manifests_hold_what_a_deployment_needs() -> None:
    kinds = {d["kind"] for d in _documents()}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "ConfigMap", "Secret"} <= kinds


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_passes_strict_validation_offline(path: Path) -> None:
    result = _validate(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_manifest_fails_validation(tmp_path: Path) -> None:
    deployment = next(
        d for d in _documents() if d["kind"] == "Deployment" and d["metadata"]["name"] == "ketluan"
    )
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pathh"] = "/readyz"
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml.safe_dump(deployment))
    assert _validate(wrong).returncode != 0


def test_probes_and_settings_name_what_the_service_has() -> None:
    from api.settings import ApiSettings
    from bot.settings import BotSettings
    from index.settings import IndexSettings

    docs = _documents()
    deployment = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "ketluan")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"/readyz", "/healthz"} <= set(create_app().openapi()["paths"])
    known = {f"KETLUAN_{name.upper()}" for cls in (ApiSettings, BotSettings, IndexSettings)
             for name in cls.model_fields}  # fmt: skip
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    unknown = {k for k in config["data"] if k.startswith("KETLUAN_")} - known
    assert not unknown


def test_haproxy_config_parses() -> None:
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(haproxy).exists():
        pytest.fail("haproxy is missing: run `make sysdeps` (apt-get install -y haproxy)")
    env = os.environ | {"KETLUAN_LB_BIND": "127.0.0.1:18080", "KETLUAN_LB_STATS": "127.0.0.1:18081"}
    result = subprocess.run([haproxy, "-c", "-f", str(ROOT / "deploy" / "haproxy" / "haproxy.cfg")],
                            capture_output=True, text=True, env=env, timeout=30)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
