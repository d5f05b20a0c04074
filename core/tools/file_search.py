"""File search: full-text search over the files attached to a thread, with citable passages.

Indexing (:func:`index_file`) extracts a file's text, cuts it into passages of about 500-800
characters that overlap a little, and remembers where each came from ("lines 10-18",
"rows 3-9", "page 2") so an answer can cite file and location. The model calls the
``file_search`` tool (:class:`FileSearchTool`); it only ever sees the current thread's files.

Tokenisation -- one rule, in Python, for both backends (:func:`segment`):

- Text is NFKC-normalised (full-width ``５元`` becomes ``5元``) and case-folded.
- Runs of letters/digits outside CJK scripts are words, as a search engine would split them.
- Runs of Han/kana characters have no spaces between words, and SQLite's ``unicode61``
  tokenizer (like PostgreSQL's parser) would make a whole run one token, so ``玫瑰`` would never
  match a passage where it is written ``玫瑰每支5元``. Instead a CJK run is indexed as its
  single characters **and** its overlapping bigrams (``向日葵`` -> 向, 向日, 日, 日葵, 葵).
  A query uses the bigrams of each CJK run (a one-character run uses the character): 2- and
  3+-character words then match on whole bigrams, and single characters still work.

We chose this over FTS5's ``trigram`` tokenizer because trigram cannot match 1-2 character
queries (most Chinese words are two characters: 玫瑰, 价格) and has no equivalent on stock
PostgreSQL without ``pg_trgm``; the segmented text works the same in an FTS5 table and in a
``simple`` tsvector. The query is an OR of its terms, because a question ("玫瑰多少钱",
"rose price") rarely shares every word with the passage that answers it; a few question words
(多少, 什么, "how", "the") are dropped from queries when other terms remain. Matches are ordered
by how many query terms they contain, then by the engine's relevance (FTS5 ``bm25``,
PostgreSQL ``ts_rank``) -- see :func:`search`. Query terms are always passed as quoted literals, so
quotes, ``AND``/``NEAR``, ``*`` or parentheses in a question are words, never syntax.

Storage (migration 0002): ``search_documents`` (one row per file indexing looked at) and
``search_chunks`` (passages + their segmented ``terms``), an FTS5 table on SQLite and a
generated GIN-indexed tsvector column on PostgreSQL. Files that were never indexed (uploaded
before file search was on, or an indexing hook that failed) are indexed on the first search.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from core.domain import utcnow
from core.store.tables import UTCDateTime, files
from core.tools.base import ToolContext, ToolResult

if TYPE_CHECKING:
    from core.domain import FileRef
    from core.store import Store

log = logging.getLogger(__name__)

DEFAULT_RESULTS = 5
MAX_RESULTS = 20
# Passage size in characters: long enough to hold an answer with its context, short enough
# that 20 of them fit comfortably in a model's context.
CHUNK_TARGET = 600
CHUNK_MAX = 800
CHUNK_OVERLAP = 120
# Bounds on what one file may put into the index; the rest is not searchable (logged).
MAX_INDEX_CHARS = 2_000_000
MAX_PDF_PAGES = 1000
# Files indexed on demand by one search call; later calls pick up the rest.
MAX_LAZY_INDEX = 20
# Longer "words" are base64, hashes or URLs glued together: noise in the index, and
# PostgreSQL silently drops lexemes over 2047 bytes, which would make backends disagree.
_MAX_TOKEN_CHARS = 64

# Han ideographs (incl. extensions A-G and compatibility), hiragana, katakana, and the
# prolonged-sound mark: scripts written without spaces between words.
_CJK = (
    "\u3041-\u3096\u30a1-\u30fa\u30fc\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
)
_TOKEN_RE = re.compile(rf"(?P<cjk>[{_CJK}]+)|(?P<word>(?:(?![{_CJK}])[^\W_])+)")

# Words of the question, not of the answer. Dropped from a query only when other terms remain.
_QUERY_STOP = frozenset(
    {
        # zh: bigrams of question phrases (多少钱, 什么, 怎么样, 请问, 一下) and particles
        "多少", "少钱", "什么", "怎么", "么样", "怎样", "哪些", "哪个", "哪里", "请问", "一下",
        "是多", "是什", "的", "了", "吗", "呢", "是", "吧", "啊",
        # en
        "a", "an", "the", "of", "is", "are", "was", "were", "be", "what", "which", "who", "how",
        "much", "many", "do", "does", "did", "to", "in", "on", "at", "for", "and", "or", "not",
        "it", "its", "this", "that", "with", "me", "i", "you", "please", "tell", "show", "find",
        "about", "there", "any",
    }
)  # fmt: skip

_TABLE_SUFFIXES = {".csv", ".tsv"}
_TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".csv", ".tsv", ".json", ".log", ".text"}
# Tables of migration 0002, for queries (SQLAlchemy Core; the migration is the schema's truth).
_metadata = sa.MetaData()

search_documents = sa.Table(
    "search_documents",
    _metadata,
    sa.Column("file_id", sa.String(40), primary_key=True),
    sa.Column("thread_id", sa.String(40), nullable=False),
    sa.Column("chunks", sa.Integer, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("indexed_at", UTCDateTime, nullable=False),
)

search_chunks = sa.Table(
    "search_chunks",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("file_id", sa.String(40), nullable=False),
    sa.Column("thread_id", sa.String(40), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("location", sa.String(100), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("terms", sa.Text, nullable=False),
)


# --- tokenisation ---------------------------------------------------------------------------


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def segment(text: str, *, for_query: bool = False) -> list[str]:
    """Split ``text`` into search terms, the same way for indexing and for queries.

    Words outside CJK scripts are kept whole (normalised, case-folded). A CJK run yields, for
    indexing, every character and every overlapping bigram; for a query, its bigrams only (or
    the character itself for a one-character run), so two-character words match exactly and
    longer ones match on all their bigrams. Query terms are de-duplicated. Punctuation and
    symbols are never terms, which is what keeps query syntax out of the search engines.
    """
    terms: list[str] = []
    for match in _TOKEN_RE.finditer(_normalise(text)):
        word = match.group("word")
        if word is not None:
            if len(word) <= _MAX_TOKEN_CHARS:
                terms.append(word)
            continue
        run = match.group("cjk")
        if len(run) == 1:
            terms.append(run)
        elif for_query:
            terms.extend(run[i : i + 2] for i in range(len(run) - 1))
        else:
            for i, char in enumerate(run):
                terms.append(char)
                if i + 1 < len(run):
                    terms.append(run[i : i + 2])
    if for_query:
        terms = list(dict.fromkeys(terms))
    return terms


def query_terms(query: str) -> list[str]:
    """The terms a search for ``query`` looks for: :func:`segment` minus question words."""
    terms = segment(query, for_query=True)
    content = [t for t in terms if t not in _QUERY_STOP]
    return content or terms


# --- text extraction ------------------------------------------------------------------------


def decode_text(data: bytes) -> str:
    """Bytes of a text file as str, with the same detection as file intake (BOMs, strict
    UTF-8, GBK/GB18030 vs Big5, then charset-normalizer); undecodable bytes are replaced
    rather than refused, since intake has already accepted the file."""
    from core.errors import FileRejected
    from core.files import decode_bytes

    try:
        return decode_bytes(data)[0]
    except FileRejected:
        return data.decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class Passage:
    """One indexed passage: its text and where it is in the file ("lines 3-9", "page 2")."""

    location: str
    text: str


def _split_long(line: str) -> list[str]:
    """A line longer than a passage, cut at a sentence end or space near the limit."""
    pieces: list[str] = []
    while len(line) > CHUNK_MAX:
        window = line[:CHUNK_MAX]
        cut = max(window.rfind(p, CHUNK_TARGET // 2) for p in "。！？；.!?;")
        if cut < 0:
            cut = window.rfind(" ", CHUNK_TARGET // 2)
        cut = CHUNK_MAX if cut < 0 else cut + 1
        pieces.append(line[:cut].strip())
        line = line[cut:].strip()
    if line:
        pieces.append(line)
    return pieces


def chunk_lines(lines: Sequence[str]) -> list[tuple[int, int, str]]:
    """Pack numbered lines into passages of about CHUNK_TARGET..CHUNK_MAX characters.

    Returns ``(first_line, last_line, text)`` with 1-based line numbers. Blank lines are
    skipped; a passage starts with the last line(s) of the previous one (up to CHUNK_OVERLAP
    characters) so a sentence cut at a boundary is still whole in one of them.
    """
    pieces = [
        (number, piece)
        for number, line in enumerate(lines, 1)
        if line.strip()
        for piece in _split_long(line.rstrip())
    ]
    chunks: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    size = 0
    for number, piece in pieces:
        if current and (size >= CHUNK_TARGET or size + len(piece) + 1 > CHUNK_MAX):
            chunks.append(current)
            tail: list[tuple[int, str]] = []
            tail_size = 0
            for prev in reversed(current):
                if tail_size + len(prev[1]) + 1 > CHUNK_OVERLAP:
                    break
                tail.insert(0, prev)
                tail_size += len(prev[1]) + 1
            if tail_size + len(piece) + 1 > CHUNK_MAX:
                tail, tail_size = [], 0
            current, size = tail, tail_size
        current.append((number, piece))
        size += len(piece) + 1
    if current:
        chunks.append(current)
    return [(c[0][0], c[-1][0], "\n".join(p for _, p in c)) for c in chunks]


def _span(word: str, first: int, last: int) -> str:
    return f"{word} {first}" if first == last else f"{word}s {first}-{last}"


def text_passages(text: str) -> list[Passage]:
    """Passages of plain text, located by line numbers."""
    return [
        Passage(_span("line", first, last), body)
        for first, last, body in chunk_lines(text.splitlines())
    ]


def table_passages(text: str) -> list[Passage]:
    """Passages of a CSV/TSV file, located by data row (row 1 is the line after the header).

    Every passage after the first starts with the header line, so a passage about row 40 still
    says which column is the price. Rows are counted as lines (quoted multi-line cells shift
    the count; sales exports do not have them).
    """
    lines = text.splitlines()
    if not lines:
        return []
    header, rows = lines[0], lines[1:]
    if not any(r.strip() for r in rows):
        return [Passage("header", header)] if header.strip() else []
    passages = []
    for first, last, body in chunk_lines(rows):
        passages.append(Passage(_span("row", first, last), f"{header}\n{body}"))
    return passages


def page_passages(pages: Iterable[str]) -> list[Passage]:
    """Passages of paged text (PDF), located by 1-based page; passages never span pages."""
    return [
        Passage(f"page {number}", body)
        for number, page in enumerate(pages, 1)
        for _first, _last, body in chunk_lines(page.splitlines())
    ]


def _pdf_pages(data: bytes) -> list[str]:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        # Many PDFs are "encrypted" with an empty user password only to restrict printing.
        reader.decrypt("")
    pages: list[str] = []
    for page in reader.pages[:MAX_PDF_PAGES]:
        pages.append(page.extract_text() or "")
    return pages


def _is_table(ref: FileRef) -> bool:
    return Path(ref.name).suffix.lower() in _TABLE_SUFFIXES or ref.mime in (
        "text/csv",
        "text/tab-separated-values",
    )


def _is_pdf(ref: FileRef) -> bool:
    return ref.kind == "pdf" or ref.mime == "application/pdf"


def _looks_textual(ref: FileRef) -> bool:
    return (
        ref.kind == "text"
        or ref.mime.startswith("text/")
        or Path(ref.name).suffix.lower() in _TEXT_SUFFIXES
    )


def _truncate(text: str, name: str) -> str:
    if len(text) > MAX_INDEX_CHARS:
        log.warning(
            "file_search: %s has %d characters; indexing the first %d",
            name,
            len(text),
            MAX_INDEX_CHARS,
        )
        return text[:MAX_INDEX_CHARS]
    return text


def passages_for(ref: FileRef, text: str | None = None) -> list[Passage]:
    """The passages of a file: from ``text`` when given, else read from ``ref.path``.

    Reads txt/md/csv (any encoding, see :func:`decode_text`) and PDF (per page). Images and
    binary files (spreadsheets) have no passages. Given ``text`` for a PDF may separate pages
    with form feeds, as ``pdftotext`` does. Raises OSError or the PDF library's error when the
    file cannot be read; :func:`index_file` records those.
    """
    if text is not None:
        text = _truncate(text, ref.name)
        if _is_pdf(ref):
            return page_passages(text.split("\f"))
        return table_passages(text) if _is_table(ref) else text_passages(text)
    if ref.kind == "image":
        return []
    data = Path(ref.path).read_bytes()
    if _is_pdf(ref) or data.startswith(b"%PDF-"):
        return page_passages(_pdf_pages(data))
    # NUL bytes or a zip container (xlsx, docx): not text, whatever the name says.
    if b"\x00" in data[:8192] or data.startswith(b"PK\x03\x04"):
        return []
    if not (_looks_textual(ref) or ref.kind == "table"):
        return []
    decoded = _truncate(decode_text(data), ref.name)
    return table_passages(decoded) if _is_table(ref) else text_passages(decoded)


# --- index ----------------------------------------------------------------------------------


def _upsert_document(dialect: str, values: dict[str, Any]) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(search_documents).values(**values)
    return stmt.on_conflict_do_update(
        index_elements=[search_documents.c.file_id],
        set_={k: stmt.excluded[k] for k in ("thread_id", "chunks", "error", "indexed_at")},
    )


async def index_file(store: Store, ref: FileRef, text: str | None = None) -> int:
    """(Re-)index one stored file; returns the number of passages now searchable.

    ``ref`` must already be in the store's ``files`` table. With ``text`` the file is not read.
    Idempotent: re-indexing replaces the file's passages in one transaction. A file that cannot
    be read or parsed indexes as 0 passages with the reason recorded (and logged) rather than
    raising, because this runs as an upload hook where a failure must not lose the upload.
    """
    error: str | None = None
    try:
        # pypdf and charset detection are CPU-bound: keep them off the event loop.
        passages = await asyncio.to_thread(passages_for, ref, text)
    except Exception as exc:  # pypdf raises many types; every one means "not searchable"
        log.warning("file_search: cannot extract text from %s (%s): %s", ref.name, ref.id, exc)
        passages, error = [], f"{type(exc).__name__}: {exc}"[:500]
    async with store.engine.begin() as conn:
        # The document row first: its row lock serialises concurrent re-indexing of one file,
        # so the delete below always sees the other writer's passages (no duplicates).
        await conn.execute(
            _upsert_document(
                store.dialect,
                {
                    "file_id": ref.id,
                    "thread_id": ref.thread_id,
                    "chunks": len(passages),
                    "error": error,
                    "indexed_at": utcnow(),
                },
            )
        )
        await conn.execute(search_chunks.delete().where(search_chunks.c.file_id == ref.id))
        if passages:
            await conn.execute(
                search_chunks.insert(),
                [
                    {
                        "file_id": ref.id,
                        "thread_id": ref.thread_id,
                        "seq": seq,
                        "location": p.location,
                        "text": p.text,
                        "terms": " ".join(segment(p.text)),
                    }
                    for seq, p in enumerate(passages)
                ],
            )
    return len(passages)


async def remove_file(store: Store, file_id: str) -> None:
    """Take a file out of search: its passages go, and it stays out until indexed again.

    While the file row exists a tombstone (0 passages, error "removed") stays behind, so the
    on-demand indexing of a search does not bring the file back; it cascades away with the file.
    """
    async with store.engine.begin() as conn:
        thread_id = (
            await conn.execute(sa.select(files.c.thread_id).where(files.c.id == file_id))
        ).scalar()
        if thread_id is None:
            await conn.execute(
                search_documents.delete().where(search_documents.c.file_id == file_id)
            )
        else:
            await conn.execute(
                _upsert_document(
                    store.dialect,
                    {
                        "file_id": file_id,
                        "thread_id": thread_id,
                        "chunks": 0,
                        "error": "removed",
                        "indexed_at": utcnow(),
                    },
                )
            )
        await conn.execute(search_chunks.delete().where(search_chunks.c.file_id == file_id))


async def index_missing(store: Store, thread_id: str, *, limit: int = MAX_LAZY_INDEX) -> int:
    """Index the thread's files that indexing never looked at; returns how many it indexed."""
    async with store.engine.connect() as conn:
        done = set(
            (
                await conn.execute(
                    sa.select(search_documents.c.file_id).where(
                        search_documents.c.thread_id == thread_id
                    )
                )
            ).scalars()
        )
    pending = [ref for ref in await store.list_files(thread_id) if ref.id not in done]
    for ref in pending[:limit]:
        await index_file(store, ref)
    return min(len(pending), limit)


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: a passage of a file, with its relevance (higher is better)."""

    file: str
    file_id: str
    location: str
    text: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "file_id": self.file_id,
            "location": self.location,
            "text": self.text,
            "score": self.score,
        }


# Both queries return the engine's relevance as ``rank`` (higher is better) and the passage's
# terms, for the re-ranking in :func:`search`.
_SQLITE_SEARCH = sa.text(
    """
    SELECT c.id, c.file_id, f.name, c.location, c.text, c.terms,
           -bm25(search_chunks_fts) AS rank
    FROM search_chunks_fts
    JOIN search_chunks AS c ON c.id = search_chunks_fts.rowid
    JOIN files AS f ON f.id = c.file_id
    WHERE search_chunks_fts MATCH :match AND c.thread_id = :thread_id
    ORDER BY bm25(search_chunks_fts), c.id
    LIMIT :limit
    """
)

_PG_SEARCH = sa.text(
    """
    SELECT c.id, c.file_id, f.name, c.location, c.text, c.terms,
           ts_rank(c.tsv, q.query) AS rank
    FROM search_chunks AS c
    JOIN files AS f ON f.id = c.file_id
    CROSS JOIN to_tsquery('simple', :match) AS q(query)
    WHERE c.thread_id = :thread_id AND c.tsv @@ q.query
    ORDER BY rank DESC, c.id
    LIMIT :limit
    """
)

# Passages the engine ranks first that are then re-ranked in Python.
_CANDIDATES = 200


async def search(
    store: Store, thread_id: str, query: str, *, limit: int = DEFAULT_RESULTS
) -> list[Hit]:
    """The best passages for ``query`` among ``thread_id``'s indexed files, best first.

    The engine (FTS5 bm25 / ts_rank) finds passages with any query term; they are then
    ordered by how many distinct query terms they contain, and by the engine's relevance
    within that. Coverage comes first because bm25's statistics are global and nearly flat in
    a small index, and because the two engines' scores are not comparable; coverage gives
    the same order on both. ``score`` is that order as a number: the count of matched terms
    plus a fraction (0..1) for the engine's relevance.

    ``limit`` is clamped to 1..MAX_RESULTS. Any text is a valid query: terms are quoted
    literals, so search syntax in it is matched as words, never interpreted.
    """
    terms = query_terms(query)
    if not terms:
        return []
    limit = max(1, min(int(limit), MAX_RESULTS))
    if store.dialect == "postgresql":
        # Terms are letters/digits only (see segment), and quoted anyway.
        match = " | ".join("'" + t.replace("'", "''").replace("\\", "\\\\") + "'" for t in terms)
        stmt = _PG_SEARCH
    else:
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        stmt = _SQLITE_SEARCH
    params = {"match": match, "thread_id": thread_id, "limit": _CANDIDATES}
    async with store.engine.connect() as conn:
        rows = (await conn.execute(stmt, params)).all()
    ranked = []
    for r in rows:
        present = set(r.terms.split())
        matched = sum(t in present for t in terms)
        relevance = max(float(r.rank), 0.0)
        # e / (1 + e) maps any engine score into 0..1, capped so rounding cannot reach 1.
        fraction = min(relevance / (1.0 + relevance), 0.9999)
        ranked.append((matched, relevance, -r.id, r, round(matched + fraction, 4)))
    ranked.sort(key=lambda item: item[:3], reverse=True)
    return [
        Hit(file=r.name, file_id=r.file_id, location=r.location, text=r.text, score=score)
        for _, _, _, r, score in ranked[:limit]
    ]


# --- the tool -------------------------------------------------------------------------------


class FileSearchTool:
    """The model-facing ``file_search`` tool over the current thread's files."""

    name = "file_search"
    description = (
        "Search the text of the files the user attached to this conversation (text, Markdown, "
        "CSV, PDF). Returns the best-matching passages, each with the file name and where it is "
        "(lines, rows or page). Quote from them and cite as (file, location). Use words that "
        "would appear in the file; Chinese and English both work. For totals or calculations "
        "over a table, use the code interpreter instead."
    )
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "query": {
                "type": "string",
                "description": "What to look for: keywords or a short question.",
            },
            "max_results": {
                "type": "integer",
                "description": f"How many passages to return (default {DEFAULT_RESULTS}, "
                f"at most {MAX_RESULTS}).",
            },
        },
        "required": ["query"],
        "additionalProperties": False,
    }
    needs_approval = False

    def __init__(self, store: Store | None = None) -> None:
        # The store comes with every call (ctx.store); this one is only a default for callers
        # that build the tool without a context's store in mind.
        self.store = store

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        """Search the thread's files; no match is an empty list with a hint, not an error."""
        store = ctx.store
        query = str(args.get("query", ""))
        # Out-of-range counts are clamped, not rejected: a model asking for 50 should get 20.
        try:
            limit = int(args.get("max_results") or DEFAULT_RESULTS)
        except (TypeError, ValueError):
            limit = DEFAULT_RESULTS
        await index_missing(store, ctx.thread.id)
        hits = await search(store, ctx.thread.id, query, limit=limit)
        if hits:
            return ToolResult(output={"results": [h.to_dict() for h in hits]})
        return ToolResult(output={"results": [], "hint": await self._hint(store, ctx, query)})

    @staticmethod
    async def _hint(store: Store, ctx: ToolContext, query: str) -> str:
        if not query_terms(query):
            return "The query has no words to search for; use keywords from the file."
        async with store.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(search_documents.c.file_id, search_documents.c.chunks).where(
                        search_documents.c.thread_id == ctx.thread.id
                    )
                )
            ).all()
        searchable = {r.file_id for r in rows if r.chunks}
        names = [f.name for f in await store.list_files(ctx.thread.id) if f.id in searchable]
        if not names:
            return (
                "No searchable files in this conversation (text, CSV or PDF). Ask the user to "
                "attach one, or answer without file search."
            )
        listed = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")
        return (
            f"No passage matched. Searchable files: {listed}. Try other keywords (the file's "
            "own wording, fewer words, or the other language: Chinese/English); do not guess."
        )

    def describe_call(self, args: dict[str, Any], lang: str) -> str:
        """One line for approval prompts and step logs."""
        query = " ".join(str(args.get("query", "")).split())
        if len(query) > 80:
            query = query[:79] + "…"
        if lang == "zh":
            return f"在本对话的文件中搜索“{query}”"
        return f'Search this conversation\'s files for "{query}"'
