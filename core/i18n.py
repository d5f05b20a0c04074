"""The person's language (``zh`` or ``en``) and the few fixed texts tallybot says itself."""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def detect_lang(text: str | None, default: str = "en") -> str:
    """``zh`` when the text has Chinese characters, else ``default``; ``default`` for empty."""
    if not text or not text.strip():
        return default
    return "zh" if _CJK.search(text) else "en"


def lang_from_locale(locale: str | None) -> str | None:
    """Slack ``zh-CN`` / Telegram ``zh-hans`` → ``zh``; any other known locale → ``en``."""
    if not locale:
        return None
    return "zh" if locale.lower().startswith("zh") else "en"


TEXTS: dict[str, dict[str, str]] = {
    "no_model": {
        "en": (
            "No model is configured, so I can only do bookkeeping commands (/help lists them).\n"
            "To chat with the assistant, set OPENAI_API_KEY (OpenAI), or OPENAI_BASE_URL for an "
            "OpenAI-compatible server — e.g. http://localhost:11434/v1 for Ollama, your vLLM or "
            "llama.cpp server, https://api.deepseek.com for DeepSeek, or "
            "https://dashscope.aliyuncs.com/compatible-mode/v1 for Qwen — plus TALLYBOT_MODEL. "
            "Put them in the environment or a .env file and start again."
        ),
        "zh": (
            "还没有配置模型，目前只能使用记账命令（/help 查看）。\n"
            "要和助手对话，请设置 OPENAI_API_KEY（OpenAI），或设置 OPENAI_BASE_URL 指向兼容 OpenAI "
            "的服务——例如 Ollama 用 http://localhost:11434/v1，或你的 vLLM / llama.cpp 服务，"
            "DeepSeek 用 https://api.deepseek.com，通义千问用 "
            "https://dashscope.aliyuncs.com/compatible-mode/v1——并设置 TALLYBOT_MODEL。"
            "写在环境变量或 .env 文件里，然后重新启动。"
        ),
    },
    "run_failed": {
        "en": "Sorry, that did not work: {message}",
        "zh": "抱歉，处理失败：{message}",
    },
    "run_cancelled": {"en": "Stopped.", "zh": "已停止。"},
    "run_expired": {
        "en": "The request waited too long for approval and has expired. Ask again to retry.",
        "zh": "等待确认超时，本次请求已过期。如需继续，请重新发送。",
    },
    "nothing_running": {"en": "Nothing is running.", "zh": "当前没有正在运行的任务。"},
    "new_thread": {
        "en": "Started a new conversation. Earlier bills are kept.",
        "zh": "已开始新的对话，之前的账单仍然保留。",
    },
    "file_attached": {"en": "Attached {name}.", "zh": "已添加文件 {name}。"},
    "approval_prompt": {"en": "Approve this action?", "zh": "是否确认执行此操作？"},
    "approved": {"en": "Approved.", "zh": "已确认。"},
    "denied": {"en": "Denied.", "zh": "已拒绝。"},
    "expired": {"en": "Expired.", "zh": "已过期。"},
    "not_allowed": {
        "en": "Sorry, this bot is not enabled for you. Ask its administrator to add you.",
        "zh": "抱歉，你没有使用此机器人的权限，请联系管理员添加。",
    },
    "approval_withdrawn": {
        "en": "Cancelled: a new message came in, or the conversation was stopped.",
        "zh": "已取消：收到了新消息，或对话已停止。",
    },
    "cancelled_for_new_message": {
        "en": "The action waiting for approval was cancelled because a new message came in.",
        "zh": "收到新消息，等待确认的操作已取消。",
    },
    "stopping": {"en": "OK, stopping.", "zh": "好的，正在停止。"},
    "exported": {"en": "Exported {count} bill(s): {name}", "zh": "已导出 {count} 份账单：{name}"},
    # --- issue 10 ---
    "store_unavailable": {
        "en": "I could not save that right now (storage problem). Please try again in a few minutes.",
        "zh": "暂时无法保存（存储出现问题），请过几分钟再试。",
    },
    "not_your_approval": {
        "en": "Only the person who asked (or an admin) can answer this.",
        "zh": "只有提出请求的人（或管理员）可以确认此操作。",
    },
    "denied_by_user": {
        "en": "The user denied this action.",
        "zh": "用户拒绝了此操作。",
    },
}


# --- issue 13: reasoning, cut-off answers, run timeout, images, voice -----------------------
TEXTS.update(
    {
        "thinking": {"en": "thinking…", "zh": "思考中…"},
        "image_only": {
            "en": "(sent an image: read it; if it is a sales sheet or receipt, list its items)",
            "zh": "（发来一张图片：请识别内容；如果是销售单或小票，请列出其中的商品）",
        },
        "answer_cut": {
            "en": "\n\n…(the answer was cut off: the model reached its output limit; ask for "
            "the rest or a shorter answer)",
            "zh": "\n\n…（回答被截断：模型达到了输出上限。可以让它继续，或要求简短一些）",
        },
        "no_vision": {
            "en": "The configured model ({model}) cannot read images, so I did not send it "
            "{name}. Type the numbers as text, or ask the admin for a vision model "
            "(TALLYBOT_VISION=on forces it).",
            "zh": "当前配置的模型（{model}）不能识别图片，所以没有把 {name} 发给它。请把数字用文字"
            "发来，或请管理员换一个能看图的模型（TALLYBOT_VISION=on 可强制开启）。",
        },
        "no_transcribe": {
            "en": "I cannot listen to voice messages here: no transcription model is "
            "configured (TALLYBOT_TRANSCRIBE_MODEL). Please type your message.",
            "zh": "这里还不能听语音：没有配置语音转写模型（TALLYBOT_TRANSCRIBE_MODEL）。请直接打字。",
        },
        "transcribe_failed": {
            "en": "I could not transcribe that voice message ({error}). Please type it.",
            "zh": "这条语音没能转写成文字（{error}）。请直接打字。",
        },
        "voice_empty": {
            "en": "I heard nothing in that voice message. Please try again or type it.",
            "zh": "这条语音里没有听到内容，请重试或直接打字。",
        },
    }
)


def t(key: str, lang: str | None, **params: object) -> str:
    """Fixed text ``key`` in ``lang`` (English fallback), formatted with ``params``."""
    entry = TEXTS[key]
    template = entry.get(lang or "en") or entry["en"]
    return template.format(**params) if params else template
