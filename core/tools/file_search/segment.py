"""Search terms: one tokenisation, in Python, for indexing and queries on both backends.

- Text is NFKC-normalised (full-width ``５元`` becomes ``5元``) and case-folded.
- Runs of letters/digits outside CJK scripts are words, as a search engine would split them.
- Runs of Han/kana characters have no spaces between words, and SQLite's ``unicode61``
  tokenizer (like PostgreSQL's parser) would make a whole run one token, so ``玫瑰`` would never
  match a passage where it is written ``玫瑰每支5元``. Instead a CJK run is indexed as its
  single characters **and** its overlapping bigrams (``向日葵`` -> 向, 向日, 日, 日葵, 葵).
  A query uses the bigrams of each CJK run (a one-character run uses the character): 2- and
  3+-character words then match on whole bigrams, and single characters still work.

A few question words (多少, 什么, "how", "the") are dropped from queries when other terms remain
(:func:`query_terms`).
"""

from __future__ import annotations

import re
import unicodedata

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
