"""A CJK font from a Python package (a plain pip install), chosen by the kernel, and font
warnings never reach the tool output."""

from __future__ import annotations

import pytest

from tests.sandbox.conftest import Sandbox

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_chosen_font_has_chinese_glyphs(sandbox: Sandbox) -> None:
    code = (
        "import matplotlib\nfrom matplotlib import font_manager\n"
        "from matplotlib.ft2font import FT2Font\n"
        "family = matplotlib.rcParams['font.sans-serif'][0]\n"
        "path = font_manager.findfont(font_manager.FontProperties(family=family),"
        " fallback_to_default=False)\n"
        "font = FT2Font(path)\n"
        "all(font.get_char_index(ord(c)) for c in '玫瑰销量利润')"
    )
    out = await sandbox.out(code, "thread_font")
    assert out["error"] is None and out["result"] == "True", out


async def test_missing_glyph_warnings_stay_out_of_the_output(sandbox: Sandbox) -> None:
    code = (
        "import warnings\nwarnings.resetwarnings()\nwarnings.simplefilter('always')\n"
        "import matplotlib.pyplot as plt\n"
        "plt.title('\\U0001f33b 向日葵 \\u2a6d6')\nplt.plot([1, 2])\n"
        "plt.rcParams['font.family'] = 'No Such Font'\nplt.xlabel('x')\nplt.show()"
    )
    out = await sandbox.out(code, "thread_font")
    assert out["error"] is None, out
    for noise in ("missing from", "findfont", "not found", "Glyph"):
        assert noise not in out["stdout"], out["stdout"]
