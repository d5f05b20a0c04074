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

Storage (migration 0002, queries in :mod:`core.store.search`): ``search_documents`` (one row per file indexing looked at) and
``search_chunks`` (passages + their segmented ``terms``), an FTS5 table on SQLite and a
generated GIN-indexed tsvector column on PostgreSQL. Files that were never indexed (uploaded
before file search was on, or an indexing hook that failed) are indexed on the first search.
Modules: :mod:`~core.tools.file_search.segment` (terms), :mod:`~core.tools.file_search.chunks`
(passages), :mod:`~core.tools.file_search.index` (indexing and ranked search),
:mod:`~core.tools.file_search.tool` (the model-facing tool).
"""

from core.tools.file_search.chunks import (
    CHUNK_MAX,
    CHUNK_OVERLAP,
    CHUNK_TARGET,
    MAX_INDEX_CHARS,
    MAX_PDF_PAGES,
    Passage,
    chunk_lines,
    decode_text,
    page_passages,
    passages_for,
    table_passages,
    text_passages,
)
from core.tools.file_search.index import (
    DEFAULT_RESULTS,
    MAX_LAZY_INDEX,
    MAX_RESULTS,
    Hit,
    index_file,
    index_missing,
    remove_file,
    search,
)
from core.tools.file_search.segment import query_terms, segment
from core.tools.file_search.tool import FileSearchTool

__all__ = [
    "CHUNK_MAX",
    "CHUNK_OVERLAP",
    "CHUNK_TARGET",
    "DEFAULT_RESULTS",
    "MAX_INDEX_CHARS",
    "MAX_LAZY_INDEX",
    "MAX_PDF_PAGES",
    "MAX_RESULTS",
    "FileSearchTool",
    "Hit",
    "Passage",
    "chunk_lines",
    "decode_text",
    "index_file",
    "index_missing",
    "page_passages",
    "passages_for",
    "query_terms",
    "remove_file",
    "search",
    "segment",
    "table_passages",
    "text_passages",
]
