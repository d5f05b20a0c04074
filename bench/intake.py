"""File intake of a large CSV against plain ``pandas.read_csv`` of the same file (issue 11).

    python bench/intake.py                 # ~50 MB sales, 1M rows, 10,000 columns x 1,000 rows
    python bench/intake.py --mb 20 --rows 200000 --wide 0

Each measurement runs in a fresh child process, so the peak RSS (``ru_maxrss`` of the child)
is that one job's and nothing is cached between rows. "tallybot intake" is
``FileIntake.ingest`` on a temporary SQLite data dir with no hooks: sniffing, decoding,
reading, the summary for the model, hashing and the content-addressed write. "pandas.read_csv"
is ``pd.read_csv(path)`` with every default (the C engine), i.e. the cheapest honest way to
look at the whole file. The budget the issue sets: accepted or refused within 20 s and 500 MB.
Prints one row per file and mode, then the ratios tallybot / pandas.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_CHILD = r"""
import asyncio, json, resource, sys, time
from pathlib import Path
mode, path, data_dir = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if mode == "pandas":
    import pandas as pd
    start = time.perf_counter()
    df = pd.read_csv(path)
    wall = time.perf_counter() - start
    shape = list(df.shape)
    summary = ""
else:
    from core.config import Settings
    from core.files import FileIntake
    from core.store import Store
    import pandas  # noqa: F401  (imported by both rows: its import is not the file's cost)

    settings = Settings(data_dir=data_dir, _env_file=None)
    settings.ensure_dirs()

    async def go():
        store = await Store.open(settings.db_url)
        try:
            thread = await store.get_or_create_thread("bench:intake")
            data = path.read_bytes()
            start = time.perf_counter()
            ref = await FileIntake(settings, store).ingest(thread.id, path.name, data)
            return time.perf_counter() - start, ref.summary
        finally:
            await store.close()

    wall, summary = asyncio.run(go())
    shape = None
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"wall": wall, "peak_mb": peak / 1024, "base_mb": base / 1024,
                  "shape": shape, "summary": summary}))
"""


def sales_csv(path: Path, target_mb: float, seed: int = 11) -> None:
    """A sales export of about ``target_mb`` MB: dates, Chinese names, codes with leading
    zeros, integers, prices, totals with thousands separators, some "N/A"."""
    rnd = random.Random(seed)
    names = ["玫瑰", "百合", "向日葵", "郁金香", "满天星", "康乃馨", "绣球", "雏菊"]
    stores = ["Shanghai Xuhui", "Beijing Chaoyang", "Shenzhen Nanshan", "Hangzhou Xihu"]
    target = int(target_mb * 1024 * 1024)
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("order_id,date,store,sku,product,quantity,unit_price,total,discount,note\n")
        size, i = 0, 0
        while size < target:
            lines = []
            for _ in range(10_000):
                i += 1
                qty = rnd.randint(1, 400)
                price = rnd.randint(100, 9_999) / 100
                total = f'"{qty * price:,.2f}"' if qty * price >= 1000 else f"{qty * price:.2f}"
                discount = "N/A" if rnd.random() < 0.1 else f"{rnd.random() / 5:.3f}"
                note = rnd.choice(["", "", "", "gift", '"urgent, call first"', "退货"])
                lines.append(
                    f"{i},2026-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d},"
                    f"{rnd.choice(stores)},{rnd.randint(1, 99_999):05d},{rnd.choice(names)},"
                    f"{qty},{price:.2f},{total},{discount},{note}\n"
                )
            chunk = "".join(lines)
            fh.write(chunk)
            size += len(chunk.encode("utf-8"))


def narrow_csv(path: Path, rows: int, seed: int = 12) -> None:
    """``rows`` short rows (id, quantity, price, code): the 1M-row case (~18 MB at 1M)."""
    rnd = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("id,qty,price,code\n")
        for start in range(0, rows, 10_000):
            fh.write(
                "".join(
                    f"{i},{rnd.randint(1, 99)},{rnd.randint(1, 999) / 10},C{rnd.randint(1, 99)}\n"
                    for i in range(start + 1, min(rows, start + 10_000) + 1)
                )
            )


def wide_csv(path: Path, columns: int, rows: int, seed: int = 13) -> None:
    """``columns`` integer columns (10,000: the width that once made a 70 KB error)."""
    rnd = random.Random(seed)
    block = [",".join(str(rnd.randint(0, 9_999)) for _ in range(columns)) for _ in range(50)]
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write(",".join(f"m{j:05d}" for j in range(columns)) + "\n")
        for _ in range(rows // len(block)):
            fh.write("\n".join(block) + "\n")


def measure(mode: str, path: Path, root: Path = ROOT) -> dict[str, object]:
    """One fresh child process doing one job on ``path`` with the checkout at ``root``
    first on the path; its wall time and peak RSS."""
    with tempfile.TemporaryDirectory(prefix="tallybot-bench-") as data_dir:
        env = {**os.environ, "PYTHONPATH": str(root)}
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, mode, str(path), data_dir],
            capture_output=True,
            text=True,
            env=env,
            cwd=data_dir,  # not the checkout: "python -c" puts the cwd before PYTHONPATH
            check=False,
        )
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=49.0, help="size of the sales CSV")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the narrow CSV")
    parser.add_argument(
        "--wide", type=int, default=10_000, help="columns of the wide CSV (0: none)"
    )
    parser.add_argument(
        "--before",
        type=Path,
        help="another checkout (e.g. the main branch) measured in the same run, row 'before'",
    )
    parser.add_argument("--show-summary", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tallybot-bench-files-") as tmp:
        files = [Path(tmp) / "sales.csv", Path(tmp) / "narrow.csv"]
        sales_csv(files[0], args.mb)
        narrow_csv(files[1], args.rows)
        if args.wide:
            files.append(Path(tmp) / "wide.csv")
            wide_csv(files[2], args.wide, 1_000)
        print(f"{'file':<24} {'mode':<16} {'wall s':>8} {'peak RSS MB':>12}  note")
        ratios = []
        for path in files:
            label = f"{path.name} {path.stat().st_size / 2**20:.1f} MB"
            rows = {}
            modes = ["tallybot", *(["before"] if args.before else []), "pandas"]
            for mode in modes:
                root = args.before if mode == "before" else ROOT
                rows[mode] = r = measure("pandas" if mode == "pandas" else "tallybot", path, root)
                if "error" in r:
                    print(f"{label:<24} {mode:<16} {'-':>8} {'-':>12}  {r['error']}")
                    continue
                note = f"shape {r['shape']}" if r.get("shape") else str(r["summary"]).split("\n")[0]
                print(f"{label:<24} {mode:<16} {r['wall']:>8.2f} {r['peak_mb']:>12.0f}  {note}")
                if args.show_summary and r.get("summary"):
                    print(r["summary"])
            if all("error" not in r for r in rows.values()):
                t, p = rows["tallybot"], rows["pandas"]
                if "before" in rows and "error" not in rows["before"]:
                    bt = rows["before"]
                    ratios.append(
                        f"{label:<24} before/after: wall "
                        f"{float(bt['wall']) / float(t['wall']):.2f}x, "  # type: ignore[arg-type]
                        f"peak RSS {float(bt['peak_mb']) / float(t['peak_mb']):.2f}x"  # type: ignore[arg-type]
                    )
                ratios.append(
                    f"{label:<24} wall {float(t['wall']) / float(p['wall']):.2f}x, "  # type: ignore[arg-type]
                    f"peak RSS {float(t['peak_mb']) / float(p['peak_mb']):.2f}x"  # type: ignore[arg-type]
                )
        print("\ntallybot / pandas.read_csv")
        print("\n".join(ratios))
    return 0


if __name__ == "__main__":
    start = time.perf_counter()
    code = main()
    print(f"\n({time.perf_counter() - start:.0f} s in all)")
    raise SystemExit(code)
