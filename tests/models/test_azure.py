"""Issue 13: Azure OpenAI through the SDK's Azure client -- the request shape on the wire."""

from __future__ import annotations

import openai
import pytest

from core.config import Settings
from core.errors import ConfigError
from core.models.base import ModelRequest, ModelTextDelta
from core.models.chat import ChatModel
from core.models.provider import build_client, build_model
from core.models.responses import ResponsesModel
from tests.models.fake_openai import FakeOpenAI
from tests.models.test_wire import HELLO


def _settings(fake: FakeOpenAI, **extra: object) -> Settings:
    values: dict[str, object] = {
        "azure_openai_endpoint": fake.origin,
        "azure_openai_api_key": "azure-key",
        "openai_api_version": "2024-10-21",
        "model": "my-gpt4o-deployment",
        "model_max_retries": 0,
        **extra,
    }
    return Settings(**values)  # type: ignore[arg-type]


async def test_chat_goes_to_the_deployment_with_api_version_and_api_key() -> None:
    async with FakeOpenAI([[ModelTextDelta("你好")]]) as fake:
        settings = _settings(fake)
        assert settings.model_configured and settings.wire_api == "chat"
        assert not settings.reads_text_tool_calls  # Azure serves OpenAI's own models
        client = build_client(settings)
        assert isinstance(client, openai.AsyncAzureOpenAI)
        model = build_model(settings, client)
        assert isinstance(model, ChatModel)
        events = [
            e
            async for e in model.stream(ModelRequest(model="", instructions="x", items=HELLO.items))
        ]
        await client.close()
    assert events[0] == ModelTextDelta("你好")
    (request,) = fake.requests
    assert request.path == "/openai/deployments/my-gpt4o-deployment/chat/completions"
    assert request.query == {"api-version": "2024-10-21"}
    assert request.headers["api-key"] == "azure-key"
    assert "Authorization" not in request.headers


async def test_responses_on_azure() -> None:
    async with FakeOpenAI([[ModelTextDelta("ok")]]) as fake:
        settings = _settings(fake, model_api="responses")
        client = build_client(settings)
        model = build_model(settings, client)
        assert isinstance(model, ResponsesModel)
        [e async for e in model.stream(HELLO)]
        await client.close()
    (request,) = fake.requests
    assert request.path == "/openai/responses"
    assert request.query == {"api-version": "2024-10-21"}
    assert request.headers["api-key"] == "azure-key"


def test_openai_api_key_is_the_fallback_key() -> None:
    settings = Settings(  # type: ignore[call-arg]
        azure_openai_endpoint="https://x.openai.azure.com",
        openai_api_key="plain",
        openai_api_version="2024-10-21",
    )
    assert build_client(settings).api_key == "plain"


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"openai_api_version": None}, "OPENAI_API_VERSION"),
        ({"azure_openai_api_key": None}, "AZURE_OPENAI_API_KEY"),
    ],
)
def test_missing_azure_settings_are_clear(extra: dict[str, object], says: str) -> None:
    values = {
        "azure_openai_endpoint": "https://x.openai.azure.com",
        "azure_openai_api_key": "k",
        "openai_api_version": "2024-10-21",
        **extra,
    }
    with pytest.raises(ConfigError, match=says):
        build_client(Settings(**values))  # type: ignore[arg-type]


def test_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://shop.openai.azure.com")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "k")
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
    settings = Settings()
    assert settings.azure_openai_endpoint == "https://shop.openai.azure.com"
    assert settings.azure_openai_api_key == "k" and settings.openai_api_version == "2024-10-21"
