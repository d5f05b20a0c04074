"""Shared fixtures and the network guard: a test that connects beyond loopback fails."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.config import Settings
from core.store import Store
from tests.pg import pg_store

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _is_local(address: object) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    if isinstance(address, tuple) and address:
        host = address[0]
        if host in ("localhost", ""):
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False
    return False


class NetworkBlocked(RuntimeError):
    """A test tried to reach beyond 127.0.0.1."""


def _guarded_connect(self: socket.socket, address: object) -> None:
    if not _is_local(address):
        raise NetworkBlocked(f"test tried to connect to {address!r}; only loopback is allowed")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    if not _is_local(address):
        raise NetworkBlocked(f"test tried to connect to {address!r}; only loopback is allowed")
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host: object, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
    if isinstance(host, bytes):
        host = host.decode()
    if host not in (None, "localhost") and isinstance(host, str):
        try:
            if not ipaddress.ip_address(host).is_loopback:
                raise NetworkBlocked(f"test tried to resolve {host!r}")
        except ValueError:
            raise NetworkBlocked(
                f"test tried to resolve {host!r}; only loopback is allowed"
            ) from None
    return _real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", _guarded_getaddrinfo)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's keys or .env; each runs in its own folder."""
    import os

    for name in list(os.environ):
        if name.startswith(("OPENAI_", "TALLYBOT_", "SLACK_", "TELEGRAM_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = Settings(data_dir=tmp_path / "data", _env_file=None)  # type: ignore[call-arg]
    s.ensure_dirs()
    return s


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    st = await Store.open(settings.db_url)
    try:
        yield st
    finally:
        await st.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_store(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Store]:
    """A migrated store on each backend (PostgreSQL: a fresh schema, see tests/pg.py)."""
    if request.param == "sqlite":
        st = await Store.open(settings.db_url)
        try:
            yield st
        finally:
            await st.close()
        return
    async for st in pg_store():
        yield st
