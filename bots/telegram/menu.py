"""The command menu registered with ``setMyCommands`` at start-up, in English and Chinese.

Only the menu lives here; what the commands do is :mod:`core.commands`.
"""

from __future__ import annotations

from telegram import Bot, BotCommand

# (command, English description, Chinese description) -- the order users see in the menu.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    (
        "bill",
        "Compute and save the day's bill from the sales file",
        "根据销售文件计算并保存当天账单",
    ),
    (
        "add",
        "Add items to the current bill, e.g. /add 2 向日葵",
        "向当前账单添加商品，如 /add 2 向日葵",
    ),
    ("show", "Show the current bill", "查看当前账单"),
    ("undo", "Revert the last change to the bill", "撤销账单的上一次修改"),
    (
        "export",
        "Export this conversation's bills (csv/xlsx/json)",
        "导出本对话的账单（csv/xlsx/json）",
    ),
    (
        "report",
        "Cost, revenue and profit, e.g. /report week",
        "成本、收入、利润报表，如 /report week",
    ),
    ("history", "Who changed a bill and how", "账单的修改记录"),
    ("new", "Start a new conversation (bills are kept)", "开始新的对话（账单会保留）"),
    ("steps", "What the assistant did in the last run", "查看助手上一次运行的步骤"),
    ("stop", "Stop the running answer", "停止正在生成的回答"),
    ("help", "How to use this bot", "使用帮助"),
)


def commands(lang: str) -> list[BotCommand]:
    column = 2 if lang == "zh" else 1
    return [BotCommand(row[0], row[column]) for row in COMMANDS]


async def register(bot: Bot) -> None:
    """English for everyone by default, Chinese for Chinese-language clients."""
    await bot.set_my_commands(commands("en"))
    await bot.set_my_commands(commands("zh"), language_code="zh")
