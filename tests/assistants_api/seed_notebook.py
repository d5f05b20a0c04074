"""The seed tutorial's notebook (../shared/seed/000_099942caf1273dfc.txt) as one script.

Cells are kept as written; the changes are marked ``# tallybot:``:
- the client gets ``base_url`` and ``api_key`` (from SEED_BASE_URL / SEED_API_KEY);
- a cell whose value the notebook showed is printed;
- where the reader waited before running the next cell, the script polls the run;
- with today's SDK (Assistants v2) ``assistants.create`` has no ``file_ids`` argument, so the
  same file goes in ``tool_resources``; with the SDK of November 2023 the cell is unchanged.
Run from this folder (it opens data/covid_worldwide.csv, as the notebook did).
"""

import json
import os
import time

import openai
from openai import OpenAI

openai.api_key = os.getenv("OPENAI_API_KEY")


def _wait(client, run):  # tallybot: the reader waited here before the next cell
    while run.status in ("queued", "in_progress", "cancelling"):
        time.sleep(0.1)
        run = client.beta.threads.runs.retrieve(thread_id=run.thread_id, run_id=run.id)
    return run


# 数据文件准备
client = OpenAI(  # tallybot: base_url and api_key
    base_url=os.environ["SEED_BASE_URL"], api_key=os.environ["SEED_API_KEY"]
)

# 文件上传
file = client.files.create(file=open("data/covid_worldwide.csv", "rb"), purpose="assistants")
print(file)


# 定义保存账单的方法
def get_total_revovered(totalRecovered):
    """保存总成本和总的收入"""
    print(totalRecovered)
    return "success"


function = {
    "type": "function",
    "function": {
        "name": "get_total_revovered",
        "description": "保存恢复人数",
        "parameters": {
            "type": "object",
            "properties": {
                "totalRecovered": {
                    "type": "number",
                    "description": "总恢复人数",
                }
            },
            "required": ["totalRecovered"],
        },
    },
}
available_functions = {"get_total_revovered": get_total_revovered}

# 创建助手
if openai.__version__.startswith("1.3."):
    assistant = client.beta.assistants.create(
        name="Data analyst",
        # description="按照每种商品的售出量，统计成本和收入，计算出总利润",
        instructions="You are a professional data analyst with years of experience. Answer the question as truthfully as possible based on the information provided.",
        model="gpt-3.5-turbo-1106",
        tools=[{"type": "code_interpreter"}, {"type": "retrieval"}, function],
        file_ids=[file.id],
    )
else:  # tallybot: the v2 SDK spells file_ids as tool_resources
    assistant = client.beta.assistants.create(
        name="Data analyst",
        instructions="You are a professional data analyst with years of experience. Answer the question as truthfully as possible based on the information provided.",
        model="gpt-3.5-turbo-1106",
        tools=[{"type": "code_interpreter"}, {"type": "retrieval"}, function],
        tool_resources={"code_interpreter": {"file_ids": [file.id]}},
    )
print(assistant)

# 创建Thread
thread = client.beta.threads.create(
    messages=[{"role": "user", "content": "各个国家恢复人数占比是多少？"}]
)
print(thread)

# 创建 run
run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
print(run)

# 通过retrieve 获取run 状态
run = client.beta.threads.runs.retrieve(thread_id=thread.id, run_id=run.id)
run = _wait(client, run)
print(list(run))

# run 触发函数调用
if run.status == "requires_action":
    tool_outputs = []
    # 调用并保存所有函数调用的结果
    for call in run.required_action.submit_tool_outputs.tool_calls:
        if call.type != "function":
            continue
        print(call)
        print(json.loads(call.function.arguments))
        # 获取真实函数
        function = available_functions[call.function.name]
        output = {
            "tool_call_id": call.id,
            "output": function(**json.loads(call.function.arguments)),
        }
        tool_outputs.append(output)

    run = client.beta.threads.runs.submit_tool_outputs(
        thread_id=thread.id, run_id=run.id, tool_outputs=tool_outputs
    )
print(list(run))

# 获取 Assistant 的消息
run = client.beta.threads.runs.retrieve(thread_id=thread.id, run_id=run.id)
run = _wait(client, run)
if run.status == "completed":
    messages = client.beta.threads.messages.list(thread_id=thread.id)
    print(messages)
elif run.status == "failed":
    print(run.error)

print(messages.data)
print(list(run))

# run steps (the tutorial's Run Step: 方便问题排查和助手优化)
steps = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id)
for step in steps.data:
    print(step.type, step.status, step.step_details)

# 发起新信息
# 添加新消息
message = client.beta.threads.messages.create(
    thread_id=thread.id, role="user", content="另外还有2支向日葵，补充下这份账单"
)
# 创建run
run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
# 获取执行结果
run = client.beta.threads.runs.retrieve(thread_id=thread.id, run_id=run.id)
run = _wait(client, run)
print(run.status)
print(client.beta.threads.messages.list(thread_id=thread.id).data[0].content[0].text.value)
