"""Bearer keys: ``TALLYBOT_API_KEYS`` from the environment, and keys made by ``tallybot keys``.

Only a key's SHA-256 is stored. Every key owns one project (``tallybot keys create --project``
puts several keys in one); every API object belongs to the project of the key that made it.
A key from the environment is its own project, named by its hash, so restarting with the same
key finds the same objects.
"""

from __future__ import annotations

import hashlib
import secrets

from core.config import Settings
from core.domain import new_id
from core.store import Store
from core.store.assistants import ApiKey

KEY_PREFIX = "sk-tb-"


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def env_project(key: str) -> str:
    """The project of a key given in ``TALLYBOT_API_KEYS``."""
    return f"env-{hash_key(key)[:12]}"


async def project_for(settings: Settings, store: Store, token: str) -> str | None:
    """The project a bearer token belongs to, or None when it is no live key."""
    if not token:
        return None
    if any(secrets.compare_digest(token, k) for k in settings.api_keys):
        return env_project(token)
    found = await store.api_key_by_hash(hash_key(token))
    return found.project if found else None


async def create_key(
    settings: Settings, *, project: str | None = None, name: str = ""
) -> tuple[str, ApiKey]:
    """A new key (shown once) and its stored record; a new project unless one is named."""
    key = KEY_PREFIX + secrets.token_urlsafe(24)
    record = ApiKey(
        id=new_id("key"),
        prefix=key[:12],
        project=project or new_id("proj"),
        name=name,
    )
    store = await Store.open(settings.db_url)
    try:
        await store.add_api_key(record, hash_key(key))
    finally:
        await store.close()
    return key, record


async def list_keys(settings: Settings) -> list[ApiKey]:
    """Every stored key, revoked ones included (never the keys themselves)."""
    store = await Store.open(settings.db_url)
    try:
        return await store.list_api_keys()
    finally:
        await store.close()


async def revoke_key(settings: Settings, key_id: str) -> ApiKey:
    """Revoke a stored key by id (raises NotFound); its objects stay, unreachable by it."""
    store = await Store.open(settings.db_url)
    try:
        return await store.revoke_api_key(key_id)
    finally:
        await store.close()
