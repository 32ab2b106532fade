"""The real `openai` Python client against `duo-selfhost serve` (run by tests/serve.rs).

Env: DUO_BASE_URL (ends in /v1), DUO_MODEL (served name), DUO_API_KEY.
Exits non-zero with a message on the first thing that is not as the OpenAI API promises.
"""
import json
import os
import sys

import openai

base = os.environ["DUO_BASE_URL"]
model = os.environ["DUO_MODEL"]
client = openai.OpenAI(base_url=base, api_key=os.environ.get("DUO_API_KEY", "unused"), max_retries=0)
messages = [{"role": "user", "content": "Name three colours."}]

plain = client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=12)
choice = plain.choices[0]
assert isinstance(choice.message.content, str) and choice.message.content, plain
assert choice.message.role == "assistant", plain
assert choice.finish_reason in ("stop", "length"), plain
assert plain.usage.completion_tokens <= 12 and plain.usage.prompt_tokens > 0, plain.usage
assert plain.usage.total_tokens == plain.usage.prompt_tokens + plain.usage.completion_tokens

pieces, finish, usage = [], None, None
stream = client.chat.completions.create(
    model=model, messages=messages, temperature=0, max_tokens=12, stream=True,
    stream_options={"include_usage": True},
)
for chunk in stream:
    if chunk.usage is not None:
        usage = chunk.usage
    for c in chunk.choices:
        if c.delta.content:
            pieces.append(c.delta.content)
        if c.finish_reason:
            finish = c.finish_reason
streamed = "".join(pieces)
assert streamed == choice.message.content, (streamed, choice.message.content)
assert finish == choice.finish_reason, finish
assert usage is not None and usage.completion_tokens == plain.usage.completion_tokens, usage

raw = client.completions.with_raw_response.create(
    model=model, prompt="def add(a, b):\n    ", suffix="\n\nprint(add(1, 2))\n", temperature=0, max_tokens=16,
)
fim_mode = raw.headers.get("x-duo-selfhost-fim")
completion = raw.parse()
assert fim_mode in ("native", "emulated"), dict(raw.headers)
assert isinstance(completion.choices[0].text, str), completion
assert completion.choices[0].finish_reason in ("stop", "length"), completion

models = client.models.list()
assert [m.id for m in models.data] == [model], models

print(json.dumps({
    "chat": choice.message.content,
    "streamed_chunks": len(pieces),
    "fim": fim_mode,
    "fim_text": completion.choices[0].text,
    "usage": plain.usage.model_dump(),
}))
