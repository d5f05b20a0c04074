"""The Assistants API (issue 14): OpenAI's shut-down ``/v1`` assistants, threads, runs and
files, served over tallybot's own engine and store. HTTP lives in bots/assistants_api."""

from core.assistants_api.errors import ApiError
from core.assistants_api.pagination import PageParams, page_params
from core.assistants_api.service import AssistantsApi, api_version
from core.assistants_api.views import Caller

__all__ = ["ApiError", "AssistantsApi", "Caller", "PageParams", "api_version", "page_params"]
