"""Images as model input (issue 13): whether the model may see them, and how they are sent.

``TALLYBOT_VISION``: ``on`` always sends images, ``off`` never, ``auto`` (default) only to
models known to see (:func:`core.models.reasoning.sees_images`). An image goes inline as a
``data:`` URL (Chat Completions ``image_url`` part, Responses ``input_image``), read from the
thread's stored copy, so nothing depends on a platform URL staying valid.
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path

from core.config import Settings
from core.domain import FileRef
from core.events import Reply
from core.i18n import t
from core.models.base import ImagePart, ModelRequest, UserText
from core.models.reasoning import sees_images

log = logging.getLogger(__name__)

IMAGE_MAX_BYTES = 20 * 1024 * 1024  # the larger inline image providers take


def vision_allowed(settings: Settings, model: str) -> bool:
    """May ``model`` be sent images under ``settings.vision``?"""
    if settings.vision == "auto":
        return sees_images(model)
    return settings.vision == "on"


def image_part(ref: FileRef) -> ImagePart | None:
    """A stored image file as an inline part; None when it cannot be read or is too big."""
    if ref.kind != "image":
        return None
    try:
        data = Path(ref.path).read_bytes()
    except OSError:
        log.warning("image %s (%s) is gone from disk", ref.name, ref.path)
        return None
    if len(data) > IMAGE_MAX_BYTES:
        return None
    return ImagePart(f"data:{ref.mime};base64,{base64.b64encode(data).decode('ascii')}")


def request_has_images(request: ModelRequest) -> bool:
    """Did the model see an image in this request (so a bill it writes may be read off it)?"""
    return any(isinstance(i, UserText) and i.images for i in request.items)


def image_message(
    settings: Settings, model: str, attached: list[FileRef], text: str, lang: str
) -> tuple[str, Reply | None]:
    """What :meth:`core.app.Tallybot.handle` does with images a person sent.

    The model may see them: ``text`` (a stand-in when the photo came without a caption, so
    the model is asked to read it). It may not: ``text`` unchanged and a clear reply saying
    the configured model cannot read images.
    """
    images = [f for f in attached if f.kind == "image"]
    if not images:
        return text, None
    if not vision_allowed(settings, model):
        names = ", ".join(f.name for f in images)
        return text, Reply(t("no_vision", lang, model=model, name=names), kind="info")
    return (text if text.strip() else t("image_only", lang)), None
