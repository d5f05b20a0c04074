"""The API's rows (core/store/assistants.py) on both store backends."""

from __future__ import annotations

import pytest

from core.errors import NotFound
from core.store import Store
from core.store.assistants import ApiKey


@pytest.fixture
def store(any_store: Store) -> Store:
    """Each test on both backends."""
    return any_store


async def test_keys_by_hash_and_revocation(store: Store) -> None:
    await store.add_api_key(ApiKey("key_1", "sk-tb-abc", "proj"), "h1")
    found = await store.api_key_by_hash("h1")
    assert found is not None and found.project == "proj"
    assert await store.api_key_by_hash("h2") is None
    revoked = await store.revoke_api_key("key_1")
    assert revoked.revoked_at is not None
    assert await store.api_key_by_hash("h1") is None
    with pytest.raises(NotFound):
        await store.revoke_api_key("key_1")


async def test_objects_belong_to_one_project(store: Store) -> None:
    await store.put_api_object("assistant", "asst_1", "p1", {"name": "a", "tools": []})
    await store.put_api_object("assistant", "asst_2", "p1", {"name": "b"})
    await store.put_api_object("message", "msg_1", "p1", {"metadata": {}}, parent="thread_1")
    assert await store.get_api_object("assistant", "asst_1", "p2") is None
    with pytest.raises(NotFound):  # the id is taken by another project
        await store.put_api_object("assistant", "asst_1", "p2", {"name": "stolen"})
    assert (await store.get_api_object("assistant", "asst_1", "p1")).data["name"] == "a"
    updated = await store.put_api_object("assistant", "asst_1", "p1", {"name": "a2"})
    assert updated.data == {"name": "a2"}
    listed = await store.list_api_objects("assistant", "p1")
    assert [o.id for o in listed] == ["asst_1", "asst_2"]  # creation order survives updates
    assert [o.id for o in await store.list_api_objects("message", "p1", parent="thread_1")] == [
        "msg_1"
    ]
    assert await store.delete_api_object("assistant", "asst_1", "p1")
    assert not await store.delete_api_object("assistant", "asst_1", "p1")
    assert await store.get_api_object("assistant", "asst_1", "p1") is None
    assert [o.id for o in await store.list_api_objects("assistant", "p1")] == ["asst_2"]
