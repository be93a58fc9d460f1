"""LoRA smoke test on CPU: a tiny random Llama and a word-level tokenizer built here, a few SFT
steps with `training.lora`, and an adapter directory vLLM could load."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.request.triage import system_prompt, user_prompt
from training.lora import ADAPTER_FILES, DEFAULT_CHAT_TEMPLATE, METADATA_FILE, REQUIRED

MISSING = [name for name in REQUIRED if importlib.util.find_spec(name) is None]
pytestmark = [
    pytest.mark.skipif(
        bool(MISSING),
        reason=f"the `lora` extra is not installed (missing {', '.join(MISSING)}): "
        "pip install -e '.[lora]'",
    ),
]

REVIEWS = [
    ("The app crashes every time I open the camera", "Bug Report", "High", "camera crash"),
    ("Please add a dark mode option", "Feature Request", "Low", "dark mode"),
    ("Love the new update, works great", "Praise", "Low", "new update"),
    ("How do I export my data to a file", "Question", "Medium", "data export"),
    ("Login fails after the update and I lost my data", "Bug Report", "Critical", "login"),
    ("Too many ads, very annoying", "Complaint", "Medium", "ads"),
]


def chat_line(text: str, category: str, urgency: str, topic: str) -> dict[str, Any]:
    answer = {"category": category, "urgency": urgency, "topic": topic, "summary": text[:60]}
    return {
        "messages": [
            {"role": "system", "content": system_prompt()},
            {"role": "user", "content": user_prompt(text, "Acme", 3)},
            {"role": "assistant", "content": orjson.dumps(answer).decode()},
        ]
    }


def write_jsonl(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


def tiny_model(directory: Path, lines: list[dict[str, Any]]) -> Path:
    """A 2-layer, 32-wide random Llama and a word-level tokenizer over the data's words."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    pre = pre_tokenizers.Whitespace()
    specials = ["<unk>", "<pad>", "<s>", "</s>"]
    texts = [DEFAULT_CHAT_TEMPLATE.replace("{", " ").replace("}", " ")]
    texts += [m["content"] for line in lines for m in line["messages"]]
    texts += ["system user assistant"]
    words = sorted({piece for text in texts for piece, _ in pre.pre_tokenize_str(text)})
    vocab = {tok: i for i, tok in enumerate([*specials, *words])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call,unused-ignore]
        tokenizer_object=backend,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
    )
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        pad_token_id=vocab["<pad>"],
        bos_token_id=vocab["<s>"],
        eos_token_id=vocab["</s>"],
    )
    import torch

    torch.manual_seed(0)
    model = LlamaForCausalLM(config)  # type: ignore[no-untyped-call,unused-ignore]
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return directory


def test_lora_trains_a_servable_adapter_on_cpu(tmp: Path) -> None:
    from training.lora import LoraOptions, train_lora

    lines = [chat_line(*r) for r in REVIEWS]
    train = write_jsonl(tmp / "train.jsonl", lines * 3)
    val = write_jsonl(tmp / "val.jsonl", lines[:2])
    base = tiny_model(tmp / "base", lines)
    out = tmp / "adapter"
    logged: list[dict[str, float]] = []
    result = train_lora(
        LoraOptions(
            base=str(base),
            train=train,
            val=val,
            out=out,
            steps=12,
            rank=4,
            learning_rate=5e-3,
            batch_size=4,
            max_length=512,
            device="cpu",
        ),
        on_log=logged.append,
    )
    for name in ADAPTER_FILES:
        assert (out / name).is_file(), (
            f"{name} missing from {sorted(p.name for p in out.iterdir())}"
        )
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["r"] == 4 and config["peft_type"] == "LORA"
    assert config["base_model_name_or_path"] == str(base)
    assert not config.get("modules_to_save"), "vLLM cannot load extra trainable modules"
    assert result.steps == 12 and len(result.losses) == 12
    assert all(math.isfinite(loss) for loss in result.losses)
    first, last = sum(result.losses[:3]) / 3, sum(result.losses[-3:]) / 3
    assert last < first, f"loss did not go down: {result.losses}"
    assert result.eval_loss is not None and math.isfinite(result.eval_loss)
    assert any("loss" in figures for figures in logged)
    meta = json.loads((out / METADATA_FILE).read_text())
    assert meta["steps"] == 12 and meta["chat_template"] == DEFAULT_CHAT_TEMPLATE
    assert len(meta["training_data_hash"]) == 64
    assert not (out / ".trainer").exists()


def test_lora_rejects_invalid_data_before_loading_anything(tmp: Path) -> None:
    from training.lora import LoraError, LoraOptions, train_lora

    bad = tmp / "train.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    with pytest.raises(LoraError, match=r"train.jsonl:1: the last message must be"):
        train_lora(LoraOptions(base=str(tmp / "nowhere"), train=bad, out=tmp / "out"))
