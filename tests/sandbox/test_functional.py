"""What the model relies on: state, fields, charts, uploads, new files, truncation, reset."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from core.domain import FileRef
from core.tools.code_interpreter import describe_files, sandbox_mode
from tests.sandbox.conftest import Sandbox, make_settings, make_tool

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_mode_is_reported(sandbox: Sandbox) -> None:
    assert sandbox.mode in ("namespaces", "audit")
    assert sandbox.tool.backend.info()["mode"] == sandbox.mode
    assert sandbox_mode("audit") == "audit"


async def test_state_persists_between_calls(sandbox: Sandbox) -> None:
    assert (await sandbox.out("x = 41\nimport pandas as pd", "thread_main"))["error"] is None
    out = await sandbox.out("x + 1", "thread_main")
    assert out == {"stdout": "", "result": "42", "error": None, "files": []}


async def test_stdout_result_and_error_fields(sandbox: Sandbox) -> None:
    out = await sandbox.out("print('hello')\n'done'", "thread_main")
    assert out["stdout"] == "hello\n" and out["result"] == "'done'" and out["error"] is None

    result = await sandbox.call("print('before')\n{}['missing']", "thread_main")
    assert result.is_error
    out = result.output
    assert out["stdout"] == "before\n" and out["result"] is None
    assert out["error"]["type"] == "KeyError" and out["error"]["message"] == "'missing'"
    assert 'File "<cell>", line 2' in out["error"]["traceback"]
    assert "kernel.py" not in out["error"]["traceback"]  # the kernel's own frames are hidden

    out = await sandbox.out("def f(:\n  pass", "thread_main")
    assert out["error"]["type"] == "SyntaxError"


async def test_dataframe_result_is_a_truncated_repr(sandbox: Sandbox) -> None:
    code = "import pandas as pd\npd.DataFrame({'flower': ['rose'] * 5000, 'qty': range(5000)})"
    out = await sandbox.out(code, "thread_main")
    assert out["result"].startswith("     flower   qty")
    assert len(out["result"]) < 8200


async def test_chart_with_chinese_title_is_a_png(sandbox: Sandbox) -> None:
    code = (
        "import matplotlib.pyplot as plt\n"
        "plt.bar(['玫瑰', '百合', '向日葵'], [40, 12, -3])\n"
        "plt.title('每日销量')\n"
    )
    result = await sandbox.call(code, "thread_main")
    out = result.output
    assert out["error"] is None, out
    assert "missing from" not in out["stdout"]  # no "Glyph ... missing from font" warnings
    [png] = result.files
    assert png.mime == "image/png" and png.name == out["files"][0]
    assert png.name.endswith(".png")
    data = Path(png.path).read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    import matplotlib.image

    image = matplotlib.image.imread(io.BytesIO(data), format="png")
    assert image.shape[0] > 100 and image.shape[1] > 100
    # The figure was closed: the next call produces no chart again.
    assert (await sandbox.out("1", "thread_main"))["files"] == []


async def test_cjk_font_is_configured(sandbox: Sandbox) -> None:
    code = (
        "import matplotlib\nfrom matplotlib import font_manager\n"
        "font_manager.FontProperties(family=matplotlib.rcParams['font.sans-serif'][0]).get_name()"
    )
    out = await sandbox.out(code, "thread_main")
    assert out["result"].strip("'") in (
        "WenQuanYi Micro Hei",
        "Noto Sans CJK SC",
        "Noto Sans CJK JP",
    )


async def test_plt_show_saves_the_figure(sandbox: Sandbox) -> None:
    code = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()\nplt.close('all')"
    result = await sandbox.call(code, "thread_main")
    assert [f.mime for f in result.files] == ["image/png"]


async def test_uploaded_file_is_readable_by_name(sandbox: Sandbox) -> None:
    blob = sandbox.settings.files_dir / "blob_sales"
    blob.write_text("flower,qty\n玫瑰,3\n百合,4\n", encoding="utf-8")
    ref = FileRef(
        id="file_1",
        thread_id="thread_main",
        name="销售.csv",
        path=str(blob),
        sha256="x",
        size=blob.stat().st_size,
        mime="text/csv",
        kind="table",
    )
    code = "import pandas as pd\nint(pd.read_csv('销售.csv')['qty'].sum())"
    out = await sandbox.out(code, "thread_main", files=[ref])
    assert out["result"] == "7", out
    assert out["files"] == []  # staged uploads are not "new files"

    mnt = await sandbox.out("import os\nos.path.exists('/mnt/data/销售.csv')", "thread_main")
    text = describe_files([ref], sandbox.mode)
    assert text == sandbox.tool.describe_files([ref])
    if sandbox.mode == "namespaces":
        assert mnt["result"] == "True"
        assert "/mnt/data/销售.csv" in text
    else:  # documented: no /mnt/data in the fallback, files are in the current folder
        assert mnt["result"] == "False" or mnt["error"] is not None
        assert "/mnt/data" not in text and "销售.csv" in text

    # The sandbox works on a copy: changing it leaves the stored upload alone.
    await sandbox.out("open('销售.csv', 'w').write('changed')", "thread_main")
    assert blob.read_text(encoding="utf-8").startswith("flower,qty")


async def test_new_files_are_returned(sandbox: Sandbox) -> None:
    code = "import pandas as pd\npd.DataFrame({'a': [1]}).to_csv('out.csv', index=False)"
    result = await sandbox.call(code, "thread_main")
    assert result.output["files"] == ["out.csv"]
    [produced] = result.files
    assert produced.mime == "text/csv"
    assert Path(produced.path).read_text() == "a\n1\n"
    assert not Path(produced.path).is_relative_to(sandbox.workdir("thread_main"))


async def test_output_is_truncated_with_a_marker(sandbox: Sandbox) -> None:
    out = await sandbox.out(
        "print('x' * 20000)\nimport os\nos.write(1, b'y' * 5000)", "thread_main"
    )
    assert out["stdout"].startswith("x" * 4096)
    assert "[output truncated: " in out["stdout"]
    assert len(out["stdout"]) < 4096 + 100


async def test_fd_level_output_is_captured(sandbox: Sandbox) -> None:
    out = await sandbox.out("import os\nos.write(1, 'raw 你好\\n'.encode())", "thread_main")
    assert out["stdout"] == "raw 你好\n"


async def test_describe_call(sandbox: Sandbox) -> None:
    assert sandbox.tool.describe_call({"code": "df.groupby('x').sum()"}, "en") == (
        "run Python code: df.groupby('x').sum()"
    )
    assert sandbox.tool.describe_call({"code": "a=1\nb=2"}, "zh").startswith(
        "运行 Python 代码：a=1"
    )
    assert sandbox.tool.needs_approval is False and sandbox.tool.name == "code_interpreter"


async def test_reset_starts_fresh_and_says_so(sandbox: Sandbox) -> None:
    await sandbox.out("y = 5", "thread_reset")
    await sandbox.tool.reset("thread_reset")
    out = await sandbox.out("'y' in dir()", "thread_reset")
    assert out["result"] == "False"
    assert "state was reset" in out["notice"]
    assert "notice" not in await sandbox.out("1", "thread_reset")


async def test_idle_kernel_is_reaped_with_a_notice(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, sandbox_idle_seconds=0.5, sandbox_pool_size=0)
    tool = make_tool(settings, "auto")
    sandbox = Sandbox(tool, settings)
    try:
        await sandbox.out("z = 1", "thread_idle")
        pid_holder = list(tool._sessions.values())[0].kernel
        await asyncio.sleep(1.5)  # the reaper runs every ~0.2 s here
        assert "thread_idle" not in tool._sessions
        assert not pid_holder.alive
        out = await sandbox.out("z", "thread_idle")
        assert out["error"]["type"] == "NameError"
        assert "idle" in out["notice"] and "state was reset" in out["notice"]
        procs = [s.kernel.proc for s in tool._sessions.values()]  # type: ignore[attr-defined]
    finally:
        await tool.aclose()
    assert procs and all(p.returncode is not None for p in procs)  # aclose killed them


async def test_cancelled_call_leaves_no_busy_kernel(sandbox: Sandbox) -> None:
    task = asyncio.create_task(sandbox.call("import time\ntime.sleep(30)", "thread_cancel"))
    while "thread_cancel" not in sandbox.tool._sessions:
        await asyncio.sleep(0.05)
    kernel = sandbox.tool._sessions["thread_cancel"].kernel
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not kernel.alive
    out = await sandbox.out("'fresh'", "thread_cancel")
    assert out["result"] == "'fresh'" and "cancelled" in out["notice"]
