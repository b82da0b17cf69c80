"""Prompt-token estimates (shared/limits/tokens.py): encodings, chat formula, offline loading."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from shared.limits import tokens
from shared.limits.tokens import (
    chat_prompt_tokens,
    completion_allowance,
    embedding_input_tokens,
    encoding_for,
)

SEED_PROMPT = "電動車的普及及如何影響保險行業的風險評估和定價策略?請簡要說明。"
REPO = Path(__file__).resolve().parents[1]
# The OpenAI cookbook's tools example (num_tokens_for_tools), with the API's measured counts.
WEATHER_TOOLS = json.loads(
    '[{"type": "function", "function": {"name": "get_current_weather", "description": "Get the '
    'current weather in a given location", "parameters": {"type": "object", "properties": {'
    '"location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},'
    ' "unit": {"type": "string", "description": "The unit of temperature to return", "enum": '
    '["celsius", "fahrenheit"]}}, "required": ["location"]}}}]'
)
WEATHER_MESSAGES = [
    {
        "role": "system",
        "content": "You are a helpful assistant that can answer to questions about the weather.",
    },
    {"role": "user", "content": "What's the weather like in San Francisco?"},
]


def n(text: str, model: str = "gpt-4o") -> int:
    return len(encoding_for(model).encode(text))


def enc_len(value: object) -> int:
    return n(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def test_seed_prompt_counts_per_encoding():
    assert len(encoding_for("gpt-4o").encode(SEED_PROMPT)) == 32
    assert len(encoding_for("gpt-35-turbo").encode(SEED_PROMPT)) == 52


O200K_MODELS = [
    "gpt-4o",
    "gpt-4o-mini-2024-07-18",
    "GPT-4o",
    "ft:gpt-4o-2024-08-06:org::abc",
    "gpt-4.1-nano",
    "gpt-5-mini",
    "o1",
    "o3-mini",
    "o4-mini",
    "my-deployment",
    "",
]
CL100K_MODELS = [
    "gpt-4",
    "gpt-4-turbo",
    "gpt-4-32k-0613",
    "gpt-3.5-turbo-0125",
    "gpt-35-turbo",
    "gpt-35-turbo-16k",
    "text-embedding-3-small",
    "text-embedding-ada-002",
]


@pytest.mark.parametrize(
    ("model", "expected"),
    [(m, "o200k_base") for m in O200K_MODELS] + [(m, "cl100k_base") for m in CL100K_MODELS],
)
def test_encoding_by_model_name(model, expected):
    assert encoding_for(model).name == expected


def test_encodings_are_cached():
    assert encoding_for("gpt-4o") is encoding_for("o3")
    assert encoding_for("gpt-4o") is not encoding_for("gpt-35-turbo")


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-35-turbo"])
def test_chat_formula_on_known_example(model):
    messages = [
        {"role": "system", "content": "You are a careful insurance analyst."},
        {"role": "user", "content": SEED_PROMPT},
        {"role": "assistant", "content": "Batteries make repairs costlier; ADAS cuts crashes."},
    ]
    expected = 3 + sum(3 + sum(n(v, model) for v in m.values()) for m in messages)
    assert chat_prompt_tokens({"messages": messages}, model) == expected


def test_name_adds_one_token_plus_its_text():
    plain = {"messages": [{"role": "user", "content": "hi"}]}
    named = {"messages": [{"role": "user", "content": "hi", "name": "alice"}]}
    plain_count = chat_prompt_tokens(plain, "gpt-4o")
    assert chat_prompt_tokens(named, "gpt-4o") == plain_count + 1 + n("alice")


def test_list_content_counts_text_parts_and_flat_images():
    base = chat_prompt_tokens({"messages": [{"role": "user", "content": ""}]}, "gpt-4o")
    parts = [
        {"type": "text", "text": "Describe both pictures."},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 50_000}},
        {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "low"}},
        {"type": "input_audio", "input_audio": {"data": "B" * 50_000, "format": "wav"}},
    ]
    got = chat_prompt_tokens({"messages": [{"role": "user", "content": parts}]}, "gpt-4o")
    expected_parts = (
        n("Describe both pictures.") + tokens.IMAGE_TOKENS_HIGH + tokens.IMAGE_TOKENS_LOW
    )
    # The audio part's base64 payload is not text: only its small string fields count.
    assert expected_parts <= got - base <= expected_parts + 10


def test_tools_functions_and_schema_are_counted_as_compact_json():
    body = {"messages": WEATHER_MESSAGES}
    base = chat_prompt_tokens(body, "gpt-4o")
    with_tools = chat_prompt_tokens({**body, "tools": WEATHER_TOOLS}, "gpt-4o")
    assert with_tools == base + enc_len(WEATHER_TOOLS)
    functions = [t["function"] for t in WEATHER_TOOLS]
    with_functions = chat_prompt_tokens({**body, "functions": functions}, "gpt-4o")
    assert with_functions == base + enc_len(functions)
    schema = {"name": "answer", "schema": {"type": "object", "properties": {}}}
    fmt = {"type": "json_schema", "json_schema": schema}
    assert chat_prompt_tokens({**body, "response_format": fmt}, "gpt-4o") == base + enc_len(schema)
    plain_json = {"response_format": {"type": "json_object"}}
    assert chat_prompt_tokens({**body, **plain_json}, "gpt-4o") == base


@pytest.mark.parametrize(("model", "api_counted"), [("gpt-4o", 101), ("gpt-4", 105)])
def test_tools_estimate_is_not_below_what_the_api_counted(model, api_counted):
    body = {"messages": WEATHER_MESSAGES, "tools": WEATHER_TOOLS}
    assert api_counted <= chat_prompt_tokens(body, model) <= api_counted * 1.3


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("hello world", 2),
        (["hello world", SEED_PROMPT], 2 + 52),
        ([15339, 1917, 0], 3),
        ([[15339, 1917], [1], []], 3),
        ([], 0),
        (None, 0),
        (42, 0),
        (["hi", 7, [1, "x", 2], {"a": 1}, True], 1 + 1 + 2),
    ],
)
def test_embedding_input_shapes(value, expected):
    assert embedding_input_tokens({"input": value}, "text-embedding-3-small") == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, 500),
        ({"max_tokens": 100}, 100),
        ({"max_tokens": -5}, 500),
        ({"max_completion_tokens": 200, "max_tokens": 100}, 200),
        ({"max_completion_tokens": 0, "max_tokens": 100}, 100),
        ({"max_tokens": "100"}, 500),
        ({"max_tokens": True}, 500),
        ([], 500),
        ({"max_tokens": 100, "n": 3}, 300),
        ({"n": 2}, 1000),
        ({"max_tokens": 100, "n": 1}, 100),
        ({"max_tokens": 100, "n": "3"}, 100),
    ],
)
def test_completion_allowance(body, expected):
    assert completion_allowance(body, 500) == expected


def nested(depth: int) -> object:
    value: object = "deep"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"messages": "hello"},
        {"messages": None},
        {"messages": [None, 3, "text", ["x"]]},
        {"messages": [{"role": "user", "content": None}]},
        {"messages": [{"role": "user", "content": 12.5}]},
        {"messages": [{"role": 1, "content": [None, 3, {"type": "image_url"}, {"type": "text"}]}]},
        {"messages": [{"role": "user", "content": "<|endoftext|> <|endofprompt|>"}]},
        {"messages": [{"role": "user", "content": "lone surrogate \ud800"}]},
        {"messages": [{"role": "user", "content": nested(5000)}]},
        {"messages": [], "tools": {1, 2}, "functions": "x", "response_format": "json"},
        {"messages": [], "response_format": {"type": "json_schema", "json_schema": nested(5000)}},
        "not a dict",
        None,
    ],
)
def test_odd_chat_input_does_not_raise(body):
    assert chat_prompt_tokens(body, "gpt-4o") >= 3
    assert embedding_input_tokens(body, 12345) >= 0  # type: ignore[arg-type]
    assert completion_allowance(body, 7) >= 7


OFFLINE_SCRIPT = textwrap.dedent(
    """
    import os, socket, sys, threading
    def refuse(*args, **kwargs):
        raise OSError("network use is not allowed here")
    socket.socket.connect = refuse
    socket.getaddrinfo = refuse
    socket.create_connection = refuse
    from shared.limits import tokens
    results = []
    threads = [threading.Thread(target=lambda: results.append(tokens.encoding_for("gpt-4o")))
               for _ in range(8)]
    for t in threads: t.start()
    for t in threads: t.join()
    assert len(results) == 8 and all(r is results[0] for r in results)
    prompt = sys.argv[1]
    print(len(results[0].encode(prompt)), len(tokens.encoding_for("gpt-35-turbo").encode(prompt)))
    print(os.environ["TIKTOKEN_CACHE_DIR"])
    """
)
O200K_FILE = "fb374d419588a4632f3f557e76b4b70aebbca790"  # sha1 of the o200k_base download URL
CL100K_FILE = "9b5ad71b2ce5302211f9c61530b329a4922fc6a4"


def run_offline(env: dict[str, str]) -> list[str]:
    base = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", OFFLINE_SCRIPT, SEED_PROMPT],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_loads_offline_into_an_empty_tiktoken_cache_dir(tmp_path):
    cache = tmp_path / "empty"
    cache.mkdir()
    (cache / O200K_FILE).write_bytes(b"corrupt")  # a bad cached file is replaced, not fetched
    counts, used = run_offline({"TIKTOKEN_CACHE_DIR": str(cache)})
    assert counts == "32 52"
    assert used == str(cache)
    assert {p.name for p in cache.iterdir()} == {O200K_FILE, CL100K_FILE}


def test_tollgate_cache_dir_wins_and_default_is_private(tmp_path):
    ours = tmp_path / "ours"
    counts, used = run_offline(
        {"TOLLGATE_TIKTOKEN_CACHE_DIR": str(ours), "TIKTOKEN_CACHE_DIR": str(tmp_path / "x")}
    )
    assert (counts, used) == ("32 52", str(ours))
    assert (ours / CL100K_FILE).is_file() and not (tmp_path / "x").exists()
    assert ours.stat().st_mode & 0o777 == 0o700

    counts, used = run_offline({"TMPDIR": str(tmp_path)})
    assert counts == "32 52"
    assert Path(used).parent == tmp_path and Path(used).stat().st_mode & 0o777 == 0o700
