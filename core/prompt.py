"""The prompt: what the model is sent on each turn, built from the store and the run.

:meth:`Prompt.request` = :meth:`Prompt.instructions` (the assistant file, today's date, the
language, the thread's files and current bill, and whatever the tools add) + :meth:`Prompt.history`
(the thread as model items, oldest exchanges dropped first to fit the budget) + the tool specs.
Everything a request is built from is in the store before the model is called (the current run
as the engine holds it is what it wrote), so a run resumed after approval or after a crash
continues exactly where it stopped. Issue 12: one read per request -- the thread, its files and
the history window (never every run of the thread) -- and a run's later turns reuse the window
(:class:`PromptMemo`). A run from :meth:`core.engine.Engine.start_run` reads nothing for its
first request: the transaction that started it read all of it; the later turns take the thread
and files from the write before them (a tool's output).

Issue 13: the current run's reasoning is passed back (:mod:`core.thinking`), images of the
current run's messages go along when the model may see them (:mod:`core.vision`), and with
``TALLYBOT_CONTEXT_TOKENS`` the whole request is fitted into that window
(:mod:`core.context_window`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from core.assistant import AssistantSpec
from core.config import Settings
from core.context_window import Window, cut_outputs, estimate_tokens, item_tokens, tools_tokens
from core.domain import FileRef, Message, Run, StepStatus, StepType, Thread
from core.models.base import (
    AssistantText,
    FunctionCall,
    FunctionOutput,
    Item,
    ModelRequest,
    UserText,
)
from core.store import Store
from core.store.history import History
from core.store.turns import TurnContext
from core.thinking import reasoning_item
from core.tools.base import PromptContext, ToolRegistry
from core.vision import image_part, vision_allowed

SUMMARY_LIMIT = 2000  # characters of one file's intake summary in the instructions


def cut(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters with a marker saying how much was dropped."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n…[cut {len(text) - limit} characters]"


class _Exchange:
    """One exchange of the history: user messages, then what the assistant did about them.

    Immutable once built, so its sizes are counted once (tokens on first use: they touch
    every character) and an earlier run's exchange can be shared by every later request
    (:class:`ExchangeCache`)."""

    __slots__ = ("items", "size", "messages", "_tokens")

    def __init__(self, items: Iterable[Item]) -> None:
        self.items: tuple[Item, ...] = tuple(items)
        size = messages = 0
        for item in self.items:
            match item:
                case UserText(text) | AssistantText(text):
                    size += len(text)
                    messages += 1
                case FunctionCall(arguments=args):
                    size += len(args)
                case FunctionOutput(output=out):
                    size += len(out)
        self.size = size  # characters of text, arguments and outputs
        self.messages = messages  # user and assistant texts
        self._tokens: int | None = None

    def tokens(self) -> int:
        if self._tokens is None:
            self._tokens = sum(item_tokens(i) for i in self.items)
        return self._tokens


ExchangeKey = tuple[str, int, int]  # run id, the seq its messages start after, output limit
EXCHANGES_CACHED = 4096  # built exchanges of finished runs kept (LRU), as the store keeps runs


class ExchangeCache:
    """The built exchanges of finished earlier runs, shared by every :class:`Prompt` of an
    engine (:attr:`core.engine.Engine.prompt` makes a new one per access) and so by every
    later run of the thread: a finished run's steps and the user messages it answers never
    change, so its exchange is built once, not once per run. A run not finished is never
    kept. Used on the event loop's thread only; at most ``limit`` entries, least recently
    used dropped first."""

    def __init__(self, limit: int = EXCHANGES_CACHED) -> None:
        if limit < 1:
            raise ValueError(f"ExchangeCache limit must be at least 1, not {limit}")
        self.limit = limit
        self._built: OrderedDict[ExchangeKey, _Exchange] = OrderedDict()

    def __len__(self) -> int:
        return len(self._built)

    def __contains__(self, key: object) -> bool:
        return key in self._built

    def get(self, key: ExchangeKey) -> _Exchange | None:
        exchange = self._built.get(key)
        if exchange is not None:
            self._built.move_to_end(key)
        return exchange

    def put(self, key: ExchangeKey, exchange: _Exchange) -> None:
        self._built[key] = exchange
        self._built.move_to_end(key)
        if len(self._built) > self.limit:
            self._built.popitem(last=False)


def run_items(run: Run, output_limit: int, *, reasoning: bool = False) -> list[Item]:
    """What ``run`` did, as model items: its finished text and its answered tool calls.

    ``reasoning`` (the run being answered): each step's reasoning goes before it. Reasoning
    of earlier runs is left out -- providers ignore or reject it after a new user message.
    """
    items: list[Item] = []
    for step in run.steps:
        thought = reasoning_item(step.details) if reasoning else None
        if thought is not None and (
            step.type == StepType.TOOL_CALLS or step.status == StepStatus.COMPLETED
        ):
            items.append(thought)
        if step.type == StepType.MESSAGE_CREATION:
            if step.status == StepStatus.COMPLETED and step.text.strip():
                items.append(AssistantText(step.text))
            continue
        # Only calls with an output: an unanswered call would be rejected by every API.
        done = [c for c in step.tool_calls if c.output is not None]
        items.extend(FunctionCall(c.id, c.name, c.arguments) for c in done)
        items.extend(FunctionOutput(c.id, cut(c.output or "", output_limit)) for c in done)
    return items


@dataclass(slots=True)
class PromptMemo:
    """What the later turns of one run reuse from its first: the history window. The earlier
    runs are finished and the run holds its thread, so the window does not change; the thread
    and its files are read again on every turn (a tool may have moved the current bill)."""

    history: History | None = None
    earlier: _Earlier | None = None  # the history's exchanges before the run, once built
    # The thread and its files as the run's last write read them (with a tool's output, or
    # start_run's): the next request or call uses them instead of reading again; used once.
    fresh: TurnContext | None = None

    def start(self, context: TurnContext | None) -> None:
        """What the transaction that started the run read for its first request (thread,
        files and history window; :meth:`core.store.Store.start_run`), if it did."""
        if context is not None and context.history is not None:
            self.history, self.fresh = context.history, context


@dataclass(slots=True)
class _Earlier:
    """The exchanges of a history window before its run, and what is left for the run."""

    exchanges: list[_Exchange]
    after_seq: int  # the messages up to here are answered by earlier runs
    messages: list[Message]  # the window's messages after ``after_seq``


@dataclass(frozen=True, slots=True)
class Prompt:
    """Builds one turn's :class:`ModelRequest` for a run from the store."""

    settings: Settings
    store: Store
    tools: ToolRegistry
    assistant: AssistantSpec
    # Built exchanges of finished runs (the engine's, outliving this Prompt); None: none kept.
    exchanges: ExchangeCache | None = None

    async def request(
        self, run: Run, thread: Thread, lang: str, model: str, *, memo: PromptMemo | None = None
    ) -> ModelRequest:
        """The whole request for the next turn of ``run`` (fitted to the window, if known):
        one read of the store (thread, files and, unless ``memo`` holds it, the history)."""
        ctx = await self._context(thread, run, memo)
        tools = self.tools.specs()
        see = vision_allowed(self.settings, model)
        if not self.settings.context_tokens:
            return ModelRequest(
                model=model,
                instructions=await self._instructions(ctx, lang),
                items=tuple(self._history(ctx, run, images=see, memo=memo)),
                tools=tools,
                reasoning_effort=self.settings.reasoning_effort,
            )
        window = Window(self.settings.context_tokens)
        room = window.input - tools_tokens(tools)
        instructions = await self._instructions(ctx, lang)
        if estimate_tokens(instructions) > room // 2:
            # File previews shrink first: the history holds what the person just asked.
            instructions = await self._instructions(ctx, lang, summary_limit=200)
        room -= estimate_tokens(instructions)
        return ModelRequest(
            model=model,
            instructions=instructions,
            items=tuple(self._history(ctx, run, images=see, token_budget=room, memo=memo)),
            tools=tools,
            reasoning_effort=self.settings.reasoning_effort,
        )

    async def _context(self, thread: Thread, run: Run, memo: PromptMemo | None) -> TurnContext:
        if memo is not None and memo.history is not None:
            ctx = memo.fresh or await self.store.turn_context(thread.id)
            memo.fresh = None
            ctx.history = memo.history
            return ctx
        window = self.settings.history_max_messages
        ctx = await self.store.turn_context(thread.id, run, window=window)
        if memo is not None:
            memo.history, memo.fresh = ctx.history, None
        return ctx

    async def instructions(
        self, thread: Thread, lang: str, *, summary_limit: int = SUMMARY_LIMIT
    ) -> str:
        """The system prompt: assistant file, date, language, files, current bill, tool texts."""
        ctx = await self.store.turn_context(thread.id)  # current bill may have moved
        return await self._instructions(ctx, lang, summary_limit=summary_limit)

    async def _instructions(
        self, ctx: TurnContext, lang: str, *, summary_limit: int = SUMMARY_LIMIT
    ) -> str:
        fresh, files = ctx.thread, ctx.files
        parts = [self.assistant.instructions, "", f"Today is {date.today().isoformat()}."]
        parts.append(
            "The person writes Chinese: answer in Chinese."
            if lang == "zh"
            else "Answer in the language the person writes in."
        )
        added = await self._tool_texts(PromptContext(fresh, lang, files))
        if files and not added:
            # No tool said where the files are (the interpreter knows /mnt/data or not).
            added = [_file_list(files)]
        parts.extend(added)
        if files:
            summaries = [(f.name, f.summary) for f in files if f.summary]
            if summaries:
                parts.append("What the files contain:")
                for name, summary in summaries:
                    parts.append(f"## {name}\n" + cut(summary, summary_limit))
        if fresh.current_bill_id:
            parts.append(
                f"The current bill of this conversation is #{fresh.current_bill_id}; "
                "amend_bill changes it unless you pass another bill_id."
            )
        return "\n".join(parts)

    async def _tool_texts(self, ctx: PromptContext) -> list[str]:
        # Optional tool method (core.tools.base.GivesInstructions): looked up, never required.
        texts = []
        for tool in self.tools:
            give = getattr(tool, "instructions", None)
            if give is not None and (text := await give(ctx)):
                texts.append(text)
        return texts

    async def history(
        self,
        thread: Thread,
        run: Run,
        *,
        images: bool = False,
        token_budget: int | None = None,
    ) -> list[Item]:
        """The thread as model items, oldest exchanges dropped first to fit the budget
        (characters, and ``token_budget`` tokens when the window is known)."""
        window = self.settings.history_max_messages
        ctx = await self.store.turn_context(thread.id, run, window=window)
        return self._history(ctx, run, images=images, token_budget=token_budget)

    def _history(
        self,
        ctx: TurnContext,
        run: Run,
        *,
        images: bool = False,
        token_budget: int | None = None,
        memo: PromptMemo | None = None,
    ) -> list[Item]:
        files = {f.id: f for f in ctx.files} if images else {}
        exchanges = self._exchanges(ctx.history or History([], []), run, files, memo)
        limit_msgs = self.settings.history_max_messages
        budget = self.settings.history_budget_chars
        kept: list[_Exchange] = []
        used = 0
        tokens = 0
        count = 0
        for exchange in reversed(exchanges):
            n = exchange.messages
            # Token estimates only when the window is known: they touch every character.
            size = exchange.tokens() if token_budget is not None else 0
            over = token_budget is not None and tokens + size > token_budget
            if kept and (used + exchange.size > budget or count + n > limit_msgs or over):
                break
            kept.append(exchange)
            used += exchange.size
            tokens += size
            count += n
        if token_budget is not None and kept and tokens > token_budget:
            kept[0] = _Exchange(cut_outputs(list(kept[0].items), token_budget))
        return [item for exchange in reversed(kept) for item in exchange.items]

    def _exchanges(
        self,
        history: History,
        run: Run,
        files: dict[str, FileRef],
        memo: PromptMemo | None = None,
    ) -> list[_Exchange]:
        """Every exchange of the window up to and including ``run`` (held in memory: its
        steps and calls are the engine's, not read back). The earlier ones are built once per
        run (``memo``): they do not change while it runs."""
        earlier = memo.earlier if memo is not None else None
        if earlier is None:
            earlier = self._earlier(history)
            if memo is not None:
                memo.earlier = earlier
        if not run.upto_seq:
            return earlier.exchanges  # a run that answers no message has no exchange
        current = _Exchange(
            [
                *(
                    _user_text(m, files)
                    for m in earlier.messages
                    if earlier.after_seq < m.seq <= run.upto_seq
                ),
                *run_items(run, self.settings.tool_output_limit, reasoning=True),
            ]
        )
        return [*earlier.exchanges, current] if current.items else earlier.exchanges

    def _earlier(self, history: History) -> _Earlier:
        prev = history.after_seq
        messages = history.messages
        limit = self.settings.tool_output_limit
        exchanges: list[_Exchange] = []
        i = 0
        for r in history.runs:
            # Both ascend: the messages of r are the next ones up to its upto_seq.
            while i < len(messages) and messages[i].seq <= prev:
                i += 1
            start = i
            while i < len(messages) and messages[i].seq <= r.upto_seq:
                i += 1
            exchange = self._exchange(r, (r.id, prev, limit), messages[start:i])
            prev = max(prev, r.upto_seq)
            if exchange.items:
                exchanges.append(exchange)
        return _Earlier(exchanges, prev, messages[i:])

    def _exchange(self, run: Run, key: ExchangeKey, messages: list[Message]) -> _Exchange:
        """The exchange of an earlier ``run`` answering ``messages``: built, or the one built
        before for ``key`` when the run is finished (its steps and messages are final)."""
        cache = self.exchanges if run.status.terminal else None
        exchange = cache.get(key) if cache is not None else None
        if exchange is None:
            limit = key[2]
            exchange = _Exchange([*(_user_text(m, {}) for m in messages), *run_items(run, limit)])
            if cache is not None:
                cache.put(key, exchange)
        return exchange


def _user_text(message: Message, files: dict[str, FileRef]) -> UserText:
    """A user message; with its images when ``files`` holds them (the run being answered)."""
    parts = [image_part(files[i]) for i in message.file_ids if i in files]
    return UserText(message.text, images=tuple(p for p in parts if p is not None))


def _file_list(files: list[FileRef]) -> str:
    return "\n".join(
        ["Files in this conversation:"] + [f"- {f.name} ({f.kind}, {f.size} bytes)" for f in files]
    )
