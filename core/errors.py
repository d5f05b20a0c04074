"""tallybot's one exception tree.

    TallybotError
    ├── UserError                 bad input from a person; shown to them, nothing lost
    │   ├── CommandError          unknown command, bad /add syntax, nothing to undo, ...
    │   ├── FileRejected          type, size, encoding, unmappable columns
    │   └── NotFound              no such bill / run / thread
    ├── ToolError                 a tool could not do what the model asked; becomes the tool's
    │   │                         output to the model (``{"error": ...}``), never a crashed run
    │   ├── ToolArgumentsInvalid  arguments failed the tool's JSON schema
    │   └── UnknownPrice          no catalog price for an item: "ask the user"
    ├── ModelError                the model service failed after the SDK's own retries
    │   ├── RateLimited           429; ``retry_after`` seconds when the server said
    │   ├── ModelTimeout
    │   ├── ModelBadRequest       400/404/422: our request or the model name is wrong
    │   ├── ModelAuthError        401/403: key missing or wrong
    │   ├── ModelServerError      5xx
    │   └── BrokenStream          disconnect, truncated stream, malformed chunk
    ├── RunError                  the run itself cannot go on
    │   ├── MaxTurnsExceeded
    │   ├── RunExpired
    │   └── StoreUnavailable      the database refused a write (disk full, gone): try later
    ├── ConfigError               settings or assistant file invalid
    └── AlreadyHandled            a delivery another process stored first

    IllegalTransition(RuntimeError)   a bug: a status change the table does not allow

Outside exceptions (openai SDK, httpx, SQLAlchemy) are converted once, at the module that
talks to them, with ``raise ... from exc``. Control flow is not modelled with exceptions:
approval is a run status, not an error.
"""

from __future__ import annotations


class TallybotError(Exception):
    """Base of every error tallybot raises on purpose. ``code`` is stable and machine-readable."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None, zh: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        # The same message in Chinese, for people who write Chinese (see ``localized``).
        self.zh = zh
        if code is not None:
            self.code = code

    def localized(self, lang: str) -> str:
        """The message in the person's language (``zh`` or ``en``), English as the fallback."""
        return self.zh if lang == "zh" and self.zh else self.message

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class UserError(TallybotError):
    code = "user_error"


class CommandError(UserError):
    code = "command_error"


class FileRejected(UserError):
    code = "file_rejected"


class NotFound(UserError):
    code = "not_found"


class ToolError(TallybotError):
    code = "tool_error"


class ToolArgumentsInvalid(ToolError):
    code = "invalid_arguments"


class UnknownPrice(ToolError):
    code = "unknown_price"


class ModelError(TallybotError):
    code = "model_error"


class RateLimited(ModelError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, zh="模型服务限流，请稍后再试。")
        self.retry_after = retry_after


class ModelTimeout(ModelError):
    code = "timeout"


class ModelBadRequest(ModelError):
    code = "bad_request"


class ModelAuthError(ModelError):
    code = "auth_error"


class ModelServerError(ModelError):
    code = "server_error"


class BrokenStream(ModelError):
    code = "broken_stream"


class RunError(TallybotError):
    code = "run_error"


class MaxTurnsExceeded(RunError):
    code = "max_turns_exceeded"


class RunExpired(RunError):
    code = "expired"


class ConfigError(TallybotError):
    code = "config_error"


class IllegalTransition(RuntimeError):
    """A status change that the transition table forbids. Always a bug in tallybot."""


class StoreUnavailable(RunError):
    """The database refused a read or write (disk full, file gone, server down).

    ``message`` (and ``last_error``) keep the technical detail for the operator; a person is
    told only that saving failed and to try again later."""

    code = "store_error"

    def localized(self, lang: str) -> str:
        if lang == "zh":
            return "暂时无法保存（存储出现问题），请过几分钟再试。"
        return (
            "I could not save that right now (storage problem). Please try again in a few minutes."
        )


class AlreadyHandled(TallybotError):
    """An inbound delivery was stored by another process first (a lapsed claim)."""

    code = "already_handled"
