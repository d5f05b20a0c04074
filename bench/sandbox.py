"""Code interpreter overhead: the sandbox versus bare pandas doing the same work, in one run.

    python bench/sandbox.py [--rows 1000000] [--calls 50] [--repeat 3] [--mode auto|audit]

Three measurements, each printed beside its bare baseline and the ratio:

1. cold start -- a kernel started from nothing (namespaces/audit set-up, pandas + matplotlib
   imported, bound to a folder) and its first ``1+1``, versus a bare ``python -c "import pandas,
   matplotlib.pyplot; 1+1"`` subprocess. The warm pool hides this from users; it is paid once
   per pool slot, in the background.
2. warm call -- ``1+1`` through ``CodeInterpreterTool.run`` on a bound kernel (framing, pipes,
   folder snapshot), versus ``eval("1+1")`` in this process. Median of ``--calls``.
3. load + groupby -- ``pd.read_csv`` of a generated sales CSV (``--rows`` rows) and a groupby
   sum, in the sandbox versus in this process. Median of ``--repeat``.

Figures vary with the machine and its load; compare the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from core.config import Settings  # noqa: E402
from core.domain import FileRef, Thread  # noqa: E402
from core.tools.base import ToolContext  # noqa: E402
from core.tools.code_interpreter import CodeInterpreterTool, LocalProcessBackend  # noqa: E402

GROUPBY = (
    "import pandas as pd\n"
    "df = pd.read_csv({path!r})\n"
    "df['revenue'] = df['qty'] * df['unit_price']\n"
    "df.groupby('flower')[['qty', 'revenue']].sum()"
)


def make_csv(path: Path, rows: int) -> None:
    rng = np.random.default_rng(7)
    flowers = np.array(["玫瑰", "百合", "向日葵", "郁金香", "康乃馨", "满天星"])
    pd.DataFrame(
        {
            "date": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 365, rows), "D"),
            "flower": flowers[rng.integers(0, len(flowers), rows)],
            "qty": rng.integers(1, 20, rows),
            "unit_cost": rng.integers(100, 500, rows) / 100,
            "unit_price": rng.integers(500, 1500, rows) / 100,
        }
    ).to_csv(path, index=False)


def row(label: str, sandbox: float, bare: float) -> None:
    print(f"{label:<26}{sandbox * 1000:>12.1f} ms{bare * 1000:>12.1f} ms{sandbox / bare:>10.1f}x")


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            data_dir=root / "data",
            sandbox_timeout=300.0,
            sandbox_pool_size=0,
        )
        settings.ensure_dirs()
        backend = LocalProcessBackend(settings, mode=args.mode)
        tool = CodeInterpreterTool(settings, backend)
        print(f"isolation mode: {backend.mode}; python {sys.version.split()[0]}")
        print(f"{'':<26}{'sandbox':>15}{'bare':>15}{'ratio':>11}")

        # 1. cold start
        t0 = time.perf_counter()
        kernel = await backend.start(root / "cold")
        await backend.execute(kernel, "1+1", time_limit=30)
        cold = time.perf_counter() - t0
        await backend.shutdown(kernel)
        t0 = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import pandas, matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot; 1+1",
            ],
            check=True,
        )
        row("cold start + 1+1", cold, time.perf_counter() - t0)

        # 2. warm call
        blob = settings.files_dir / "sales.csv"
        make_csv(blob, args.rows)
        ref = FileRef(
            id="file_bench",
            thread_id="thread_bench",
            name="sales.csv",
            path=str(blob),
            sha256="-",
            size=blob.stat().st_size,
            mime="text/csv",
            kind="table",
        )
        ctx = ToolContext(
            settings=settings,
            store=None,  # type: ignore[arg-type]
            thread=Thread(id="thread_bench", key="bench"),
            run_id="run",
            call_id="call",
            files=[ref],
        )
        await tool.run({"code": "1+1"}, ctx)  # bind the kernel, stage the upload
        warm = []
        for _ in range(args.calls):
            t0 = time.perf_counter()
            result = await tool.run({"code": "1+1"}, ctx)
            warm.append(time.perf_counter() - t0)
            assert result.output["result"] == "2"
        bare = []
        for _ in range(args.calls):
            t0 = time.perf_counter()
            eval(compile("1+1", "<cell>", "eval"))  # noqa: S307 - the baseline
            bare.append(time.perf_counter() - t0)
        row("warm call 1+1 (median)", statistics.median(warm), statistics.median(bare))

        # 3. load + groupby
        sandboxed, bare = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            result = await tool.run({"code": GROUPBY.format(path="sales.csv")}, ctx)
            sandboxed.append(time.perf_counter() - t0)
            assert result.output["error"] is None, result.output
            scope: dict = {}
            t0 = time.perf_counter()
            code = GROUPBY.format(path=str(blob)).rsplit("\n", 1)
            exec(code[0], scope)  # noqa: S102 - the baseline runs the very same code
            eval(code[1], scope)  # noqa: S307
            bare.append(time.perf_counter() - t0)
        mb = blob.stat().st_size / 1e6
        row(
            f"{args.rows:,} rows ({mb:.0f} MB)",
            statistics.median(sandboxed),
            statistics.median(bare),
        )
        await tool.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mode", default="auto", choices=["auto", "audit", "namespaces"])
    asyncio.run(main(parser.parse_args()))
