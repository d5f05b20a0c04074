"""The handler for the ``/tally`` slash command: its text goes to ``Tallybot.handle`` as a
command (``/tally bill`` → ``/bill``) or a question.

Answers go into the channel; where the bot cannot post, the responder answers ephemerally
through the command's ``response_url``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.i18n import t

from .addressing import pick_lang, place_for_slash, slash_text

if TYPE_CHECKING:
    from .host import Host


async def handle_slash(host: Host, body: dict[str, Any]) -> None:
    """One ``/tally`` invocation (already acked)."""
    team, user, channel = (
        str(body.get("team_id")),
        str(body.get("user_id")),
        str(body["channel_id"]),
    )
    raw = str(body.get("text") or "")
    lang = pick_lang(raw, await host.locale(user))
    place = place_for_slash(team, channel)
    responder = host.responder(
        place, team=team, user=user, lang=lang, response_url=body.get("response_url")
    )
    if not host.guard.allowed(team, user):
        host.stats["refused"] += 1
        await responder.post(t("not_allowed", lang))
        return
    host.stats["handled"] += 1
    name = host.display_name(user)
    await host.answer(
        responder,
        host.bot.handle(place.key, slash_text(raw), lang=lang, user=user, user_name=name),
    )
