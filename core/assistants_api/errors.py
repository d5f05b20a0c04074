"""The API's error shape: ``{"error": {"message", "type", "param", "code"}}`` with a status."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answered to the HTTP client as OpenAI's API does (400/401/404/409/429)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",  # noqa: A002 - the API's own field name
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        """The JSON body of the error response."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def not_found(kind: str, id_: str) -> ApiError:
    """404 as the API words it; also what another project's key gets for an object."""
    return ApiError(404, f"No {kind} found with id '{id_}'.", param=None, code=None)


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> ApiError:
    """400 for input the API cannot use."""
    return ApiError(400, message, param=param, code=code)
