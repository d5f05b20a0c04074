"""``TALLYBOT_SANDBOX``: what each setting resolves to, and ``off`` really removes the tool."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from core.app import build_tools
from core.assistant import AssistantSpec
from core.config import Settings
from core.tools.code_interpreter import mode as mode_mod
from core.tools.code_interpreter.mode import (
    OFF_NOTE,
    SandboxUnavailable,
    build_interpreter,
    resolve_mode,
)


def _settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path / "data", **kw)  # type: ignore[call-arg]


@pytest.fixture
def no_namespaces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mode_mod, "namespaces_available", lambda: (False, "not root"))


def test_setting_is_read_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TALLYBOT_SANDBOX", "audit")
    monkeypatch.setenv("TALLYBOT_SANDBOX_DISK_MB", "64")
    settings = _settings(tmp_path)
    assert settings.sandbox == "audit" and settings.sandbox_disk_mb == 64
    monkeypatch.setenv("TALLYBOT_SANDBOX", "bogus")
    with pytest.raises(ValueError):
        _settings(tmp_path)


def test_auto_without_namespaces_or_service_is_off(tmp_path: Path, no_namespaces: None) -> None:
    assert resolve_mode(_settings(tmp_path)).mode == "off"


def test_auto_prefers_the_service_over_off(tmp_path: Path, no_namespaces: None) -> None:
    choice = resolve_mode(_settings(tmp_path, sandbox_socket=tmp_path / "s.sock"))
    assert choice.mode == "container"


def test_auto_never_picks_audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for available in (True, False):
        monkeypatch.setattr(mode_mod, "namespaces_available", lambda a=available: (a, "x"))
        assert resolve_mode(_settings(tmp_path)).mode in ("namespaces", "off")


def test_explicit_namespaces_fails_loudly_when_unavailable(
    tmp_path: Path, no_namespaces: None
) -> None:
    with pytest.raises(SandboxUnavailable):
        resolve_mode(_settings(tmp_path, sandbox="namespaces"))
    with pytest.raises(SandboxUnavailable):
        resolve_mode(_settings(tmp_path, sandbox="container"))


def test_off_removes_the_tool_and_logs_how_to_enable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(tmp_path, sandbox="off")
    spec = AssistantSpec(name="a", instructions="Be helpful.", tools=("code_interpreter",))
    with caplog.at_level(logging.WARNING):
        registry, closeable = build_tools(settings, None, None, spec)  # type: ignore[arg-type]
    assert "code_interpreter" not in registry and closeable == []
    assert "TALLYBOT_SANDBOX=" in caplog.text
    noted = spec.with_note(OFF_NOTE)
    assert noted.instructions.endswith(OFF_NOTE) and "沙箱" in noted.instructions


def test_audit_says_it_is_not_a_boundary(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        tool = build_interpreter(_settings(tmp_path, sandbox="audit"))
    assert tool is not None and tool.mode == "audit"
    assert "NOT a security boundary" in caplog.text
