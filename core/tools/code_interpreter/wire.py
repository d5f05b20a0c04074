"""Frames between the bot and ``tallybot sandbox-server``: a 4-byte big-endian length, then
UTF-8 JSON -- the same framing the kernel speaks on its pipes."""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

MAX_REQUEST = 4 * 1024 * 1024  # code cells are small; anything bigger is a misbehaving peer


class FrameError(Exception):
    """The peer sent something that is not a frame (too large, not a JSON object)."""


async def read_frame(reader: asyncio.StreamReader, limit: int) -> dict[str, Any] | None:
    """The next frame, or None when the peer closed the connection cleanly."""
    try:
        header = await reader.readexactly(4)
    except asyncio.IncompleteReadError:
        return None
    (size,) = struct.unpack(">I", header)
    if size > limit:
        raise FrameError(f"frame of {size} bytes exceeds {limit}")
    try:
        body = await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        return None
    try:
        msg = json.loads(body.decode("utf-8"))
    except ValueError as exc:
        raise FrameError("frame is not JSON") from exc
    if not isinstance(msg, dict):
        raise FrameError("frame is not an object")
    return msg


async def write_frame(writer: asyncio.StreamWriter, msg: dict[str, Any]) -> None:
    """Send one frame and wait until it is handed to the OS."""
    data = json.dumps(msg, ensure_ascii=False, default=str).encode("utf-8")
    writer.write(struct.pack(">I", len(data)) + data)
    await writer.drain()
