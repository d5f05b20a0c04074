"""Settings: the only module that reads the environment (and a `.env` file).

Every other module receives a :class:`Settings` instance; nothing else calls ``os.environ``.
Names are contracts: ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``TALLYBOT_*``, ``SLACK_*``,
``TELEGRAM_*``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

OPENAI_HOSTS = ("api.openai.com",)
DEFAULT_MODEL = "gpt-5-mini"

CsvList = Annotated[list[str], NoDecode]


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    """Runtime settings. Field ``foo`` reads ``TALLYBOT_FOO`` unless an alias says otherwise."""

    model_config = SettingsConfigDict(
        env_prefix="TALLYBOT_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    # --- model -----------------------------------------------------------------------------
    openai_api_key: str | None = Field(default=None, validation_alias=_env("OPENAI_API_KEY"))
    openai_base_url: str | None = Field(default=None, validation_alias=_env("OPENAI_BASE_URL"))
    model: str = DEFAULT_MODEL
    model_api: Literal["responses", "chat"] | None = None
    model_timeout: float = 120.0
    model_max_retries: int = 2

    # --- issue 13: reasoning, Azure, small models, images, voice ---------------------------
    reasoning_effort: str | None = None  # "minimal" | "low" | "medium" | "high", where supported
    azure_openai_endpoint: str | None = Field(
        default=None, validation_alias=_env("AZURE_OPENAI_ENDPOINT")
    )
    azure_openai_api_key: str | None = Field(
        default=None, validation_alias=_env("AZURE_OPENAI_API_KEY")
    )
    openai_api_version: str | None = Field(
        default=None, validation_alias=_env("OPENAI_API_VERSION")
    )
    text_tool_calls: Literal["auto", "on", "off"] = "auto"
    run_timeout: float = 300.0  # seconds of wall time per run; 0 = no bound
    context_tokens: int | None = None  # the model's window; None = unknown, no trimming
    vision: Literal["auto", "on", "off"] = "auto"
    transcribe_model: str | None = None

    # --- storage ---------------------------------------------------------------------------
    data_dir: Path = Path("./data")
    database_url: str | None = None
    assistant: Path | None = None

    # --- run engine ------------------------------------------------------------------------
    approve_writes: bool = False
    max_turns: int = 12
    run_expires_seconds: int = 600
    history_max_messages: int = 40
    history_budget_chars: int = 60_000
    tool_output_limit: int = 16_000
    currency: str = "CNY"

    # --- issue 9, the shop's book: "place" shares bills across a place's threads -----------
    book_scope: Literal["place", "thread"] = "place"

    # --- files and sandbox -----------------------------------------------------------------
    file_max_bytes: int = 50 * 1024 * 1024
    preview_rows: int = 5
    sandbox_timeout: float = 30.0
    sandbox_memory_mb: int = 1024
    sandbox_idle_seconds: float = 600.0
    sandbox_pool_size: int = 1
    sandbox_max_output: int = 64 * 1024
    # Isolation of the code interpreter (contract, see docs/sandbox.md): ``auto`` picks
    # namespaces, else container when a sandbox service is configured, else off.
    sandbox: Literal["auto", "namespaces", "container", "audit", "off"] = "auto"
    sandbox_disk_mb: int = 256  # per-thread working folder quota
    sandbox_socket: Path | None = None  # container mode: the sandbox service's unix socket

    # --- Slack -----------------------------------------------------------------------------
    slack_bot_token: str | None = Field(default=None, validation_alias=_env("SLACK_BOT_TOKEN"))
    slack_app_token: str | None = Field(default=None, validation_alias=_env("SLACK_APP_TOKEN"))
    slack_signing_secret: str | None = Field(
        default=None, validation_alias=_env("SLACK_SIGNING_SECRET")
    )
    slack_api_url: str | None = Field(default=None, validation_alias=_env("SLACK_API_URL"))
    slack_allowed_users: CsvList = Field(default_factory=list)
    slack_allowed_teams: CsvList = Field(default_factory=list)

    # --- Telegram --------------------------------------------------------------------------
    telegram_bot_token: str | None = Field(
        default=None, validation_alias=_env("TELEGRAM_BOT_TOKEN")
    )
    telegram_api_url: str = Field(
        default="https://api.telegram.org", validation_alias=_env("TELEGRAM_API_URL")
    )
    telegram_webhook_url: str | None = Field(
        default=None, validation_alias=_env("TELEGRAM_WEBHOOK_URL")
    )
    telegram_webhook_secret: str | None = Field(
        default=None, validation_alias=_env("TELEGRAM_WEBHOOK_SECRET")
    )
    telegram_allowed_users: CsvList = Field(default_factory=list)
    telegram_allowed_chats: CsvList = Field(default_factory=list)

    # --- issue 14: the Assistants API (core/assistants_api, bots/assistants_api) ------------
    # Bearer keys accepted besides `tallybot keys create` ones; each is its own project.
    api_keys: CsvList = Field(default_factory=list)
    # Send the model an API client names to the provider (off: TALLYBOT_MODEL answers all).
    api_pass_model: bool = False
    # More active runs than this per project get 429.
    api_max_active_runs: int = 8

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    # --- issue 10: one server, replicas ------------------------------------------------------
    # SIGTERM: stop taking events, let runs finish this long, leave the rest recoverable.
    shutdown_grace: float = 20.0
    # Runs at once per process; the rest wait in order. The default leaves room in
    # database pool (10 + 10 overflow, core/store/db.py) for the deliveries being stored.
    max_concurrent_runs: int = 8
    # Channel-qualified ids (slack:U123, telegram:42) who may answer anyone's approval.
    admins: CsvList = Field(default_factory=list)
    # A replica's leases (one run per thread, the Telegram poller) lapse this long after it dies.
    lease_seconds: float = 10.0
    # A stored message nobody answered for this long is picked up by any replica.
    requeue_after: float = 15.0

    @field_validator(
        "slack_allowed_users",
        "slack_allowed_teams",
        "telegram_allowed_users",
        "telegram_allowed_chats",
        "admins",
        mode="before",
    )
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("data_dir", "assistant")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        # Absolute once, here: the sandbox changes its working folder, and a relative
        # "./data" would then point somewhere else.
        return None if value is None else Path(value).expanduser().resolve()

    @field_validator("currency")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.strip().upper()

    # --- derived ---------------------------------------------------------------------------
    @property
    def db_url(self) -> str:
        """SQLAlchemy URL; default SQLite file inside the data folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'tallybot.db').resolve()}"

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"

    @property
    def sandbox_dir(self) -> Path:
        return self.data_dir / "sandbox"

    @property
    def exports_dir(self) -> Path:
        return self.data_dir / "exports"

    @property
    def model_configured(self) -> bool:
        """A model is usable when a key is set, or a base URL (local servers need no key),
        or an Azure OpenAI endpoint."""
        return bool(self.openai_api_key or self.openai_base_url or self.azure_openai_endpoint)

    @property
    def wire_api(self) -> Literal["responses", "chat"]:
        """Responses API for OpenAI itself, Chat Completions for everyone else (Azure
        deployments included), unless set."""
        if self.model_api:
            return self.model_api
        if self.azure_openai_endpoint:
            return "chat"
        if not self.openai_base_url:
            return "responses"
        return "responses" if any(h in self.openai_base_url for h in OPENAI_HOSTS) else "chat"

    @property
    def reads_text_tool_calls(self) -> bool:
        """Issue 13: look for tool calls written in the message text (small local models).
        ``auto``: on for Chat Completions servers that are not OpenAI's (nor Azure's)."""
        if self.text_tool_calls != "auto":
            return self.text_tool_calls == "on"
        url = self.openai_base_url or ""
        openai_own = not url or any(h in url for h in OPENAI_HOSTS)
        return self.wire_api == "chat" and not openai_own and not self.azure_openai_endpoint

    def ensure_dirs(self) -> None:
        for path in (self.data_dir, self.files_dir, self.sandbox_dir, self.exports_dir):
            path.mkdir(parents=True, exist_ok=True)


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment and `.env`; keyword overrides win (tests, CLI flags)."""
    return Settings(**overrides)  # type: ignore[arg-type]
