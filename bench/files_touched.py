"""Which first-party files run while one test plays a scenario: the files a newcomer opens.

    python bench/files_touched.py tests/slack/test_transcript.py

Counts the core/ and bots/ modules whose functions are called (module bodies run at import
are not counted; migrations are not), with their line counts, then the totals.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PREFIXES = (str(ROOT / "core") + "/", str(ROOT / "bots") + "/")


def main(argv: list[str]) -> int:
    seen: set[str] = set()

    def profile(frame, event, _arg):  # type: ignore[no-untyped-def]
        if event == "call":
            name = frame.f_code.co_filename
            if name.startswith(PREFIXES) and frame.f_code.co_name != "<module>":
                if "/migrations/" not in name:
                    seen.add(name)

    sys.setprofile(profile)
    threading.setprofile(profile)
    try:
        code = pytest.main([*argv, "-q", "-p", "no:cacheprovider"])
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    total = 0
    rows = []
    for name in sorted(seen):
        lines = len(Path(name).read_text(encoding="utf-8").splitlines())
        total += lines
        rows.append((lines, Path(name).relative_to(ROOT).as_posix()))
    for lines, rel in rows:
        print(f"{lines:6d}  {rel}")
    largest = max(rows, default=(0, "-"))
    print(f"files: {len(rows)}  lines: {total}  largest: {largest[1]} ({largest[0]})")
    return int(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["tests/slack/test_transcript.py"]))
