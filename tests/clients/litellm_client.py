"""The real `litellm` package against `duo-selfhost serve`, called the way GitLab's AI Gateway
calls a self-hosted model: model "custom_openai/<served name>", api_base ending in /v1, the
Codestral code-completion chat shape with its stop list (run by tests/serve.rs).

Env: DUO_BASE_URL (ends in /v1), DUO_MODEL (served name), DUO_API_KEY.
"""
import asyncio
import json
import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
import litellm  # noqa: E402

base = os.environ["DUO_BASE_URL"]
model = "custom_openai/" + os.environ["DUO_MODEL"]
key = os.environ.get("DUO_API_KEY", "unused")
assert base.endswith("/v1"), base

plain = litellm.completion(
    model=model, api_base=base, api_key=key, temperature=0, max_tokens=10,
    messages=[{"role": "user", "content": "Say hello."}],
)
text = plain.choices[0].message.content
assert isinstance(text, str) and text, plain
assert plain.usage.completion_tokens <= 10, plain.usage

pieces = []
for chunk in litellm.completion(
    model=model, api_base=base, api_key=key, temperature=0, max_tokens=10, stream=True,
    messages=[{"role": "user", "content": "Say hello."}],
):
    delta = chunk.choices[0].delta.content if chunk.choices else None
    if delta:
        pieces.append(delta)
assert "".join(pieces) == text, (pieces, text)


async def code_completion():
    # What the gateway sends for self-hosted Codestral code completion.
    return await litellm.acompletion(
        model=model, api_base=base, api_key=key, temperature=0.32, max_tokens=64, n=1,
        stop=["[INST]", "[/INST]", "[PREFIX]", "[MIDDLE]", "[SUFFIX]"],
        messages=[
            {"role": "system", "content": "You are a code completion tool that fills the gap between prefix and suffix. Return code only."},
            {"role": "user", "content": "<s>[SUFFIX]\n    return total\n[PREFIX]def sum_list(xs):\n    total = 0\n"},
        ],
    )

fim = asyncio.run(code_completion())
fim_text = fim.choices[0].message.content
assert isinstance(fim_text, str), fim
for marker in ["[INST]", "[/INST]", "[PREFIX]", "[MIDDLE]", "[SUFFIX]"]:
    assert marker not in fim_text, fim_text

print(json.dumps({"chat": text, "streamed_chunks": len(pieces), "code_completion": fim_text}))
