"""LoRA on CPU: a tiny random Llama and a lossless word-level tokenizer built here, SFT with
`training.lora`, an adapter directory vLLM could load, and an adapter that stops at EOS."""

from __future__ import annotations

import importlib.util
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.servers import TRAINING_REVIEWS, chat_example
from training.lora import (
    ADAPTER_FILES,
    DEFAULT_CHAT_TEMPLATE,
    METADATA_FILE,
    REQUIRED,
    LoraOptions,
)

# The template before adapters learnt to stop: turns end with `<|end|>`, no EOS token.
END_TAG_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

MISSING = [name for name in REQUIRED if importlib.util.find_spec(name) is None]
pytestmark = [
    pytest.mark.skipif(
        bool(MISSING),
        reason=f"the `lora` extra is not installed (missing {', '.join(MISSING)}): "
        "pip install -e '.[lora]'",
    ),
]


def cpu_options(base: Path, train: Path, out: Path, **options: Any) -> LoraOptions:
    """Training options for a tiny model: on the CPU, sequences of up to 512 tokens."""
    return LoraOptions(
        base=str(base), train=train, out=out, max_length=512, device="cpu", **options
    )


def write_jsonl(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Tiny models gain nothing from threads; on a busy machine extra threads only wait on
    each other (ten times slower measured), so these tests use one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_model(
    directory: Path,
    lines: list[dict[str, Any]],
    *,
    hidden: int = 32,
    head_std: float | None = None,
    chat_template: str | None = None,
) -> Path:
    """A 2-layer random Llama and a word-level tokenizer over the data's words that decodes
    back to the exact text (spaces, punctuation and newlines are tokens of their own).

    `head_std` re-draws the frozen output layer wider than the default init (std 0.02), whose
    logits stay near uniform whatever the hidden state (|logit| <= 0.02 x hidden), so a few
    LoRA steps can give confident predictions, as a trained head would. `chat_template` is
    saved with the tokenizer (default: none, so `train_lora` adds `DEFAULT_CHAT_TEMPLATE`)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    pre = pre_tokenizers.Split(Regex(r" ?\w+| ?[^\w\s]|\s"), behavior="isolated")
    specials = ["<unk>", "<pad>", "<s>", "</s>"]
    texts = ["<|system|>\n<|user|>\n<|assistant|>\n<|end|>\n"]
    texts += [m["content"] for line in lines for m in line["messages"]]
    words = sorted({piece for text in texts for piece, _ in pre.pre_tokenize_str(text)})
    vocab = {tok: i for i, tok in enumerate([*specials, *words])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call,unused-ignore]
        tokenizer_object=backend,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
    )
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
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
    if head_std is not None:
        with torch.no_grad():
            model.lm_head.weight.normal_(0.0, head_std)
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return directory


def test_lora_trains_a_servable_adapter_on_cpu(tmp: Path) -> None:
    from training.lora import train_lora

    lines = [chat_example(*r) for r in TRAINING_REVIEWS]
    train = write_jsonl(tmp / "train.jsonl", lines * 3)
    val = write_jsonl(tmp / "val.jsonl", lines[:2])
    base = tiny_model(tmp / "base", lines)
    out = tmp / "adapter"
    logged: list[dict[str, float]] = []
    options = cpu_options(base, train, out, val=val, steps=12, rank=4, learning_rate=5e-3)
    result = train_lora(options, on_log=logged.append)
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
    assert result.eos_labelled == 1.0, "every answer's labels must end with the EOS token"
    assert any("loss" in figures for figures in logged)
    meta = json.loads((out / METADATA_FILE).read_text())
    assert meta["steps"] == 12 and meta["chat_template"] == DEFAULT_CHAT_TEMPLATE
    assert meta["eos_labelled"] == 1.0
    assert len(meta["training_data_hash"]) == 64
    assert not (out / ".trainer").exists()


def test_lora_rejects_invalid_data_before_loading_anything(tmp: Path) -> None:
    from training.lora import LoraError, train_lora

    bad = tmp / "train.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    with pytest.raises(LoraError, match=r"train.jsonl:1: the last message must be"):
        train_lora(LoraOptions(base=str(tmp / "nowhere"), train=bad, out=tmp / "out"))


def greedy_answers(base: Path, adapter: Path, lines: list[dict[str, Any]]) -> list[list[int]]:
    """The adapter's greedy continuation of each line's prompt (at most 80 new tokens), in
    the chat template recorded with the adapter, as vLLM would be given it."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base))
    tokenizer.chat_template = (
        json.loads((adapter / METADATA_FILE).read_text())["chat_template"]
        or tokenizer.chat_template
    )
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(base)), adapter)
    model.eval()
    out = []
    for line in lines:
        prompt: Any = tokenizer.apply_chat_template(
            line["messages"][:-1], add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        with torch.no_grad():
            ids = model.generate(**prompt, max_new_tokens=80, do_sample=False)
        out.append(ids[0, prompt["input_ids"].shape[1] :].tolist())
    return out


def test_lora_adapter_stops_with_eos_right_after_the_json(tmp: Path) -> None:
    """The default template ends the answer with EOS, so the trained adapter's greedy answer
    is the training JSON and then EOS, not `<|end|>` and more JSON up to the token limit."""
    from transformers import AutoTokenizer

    from training.lora import train_lora

    lines = [chat_example(*r) for r in TRAINING_REVIEWS[:2]]
    base = tiny_model(tmp / "base", lines, hidden=64, head_std=0.3)
    train = write_jsonl(tmp / "train.jsonl", lines * 4)
    options = cpu_options(base, train, tmp / "adapter", steps=150, rank=8, learning_rate=7e-3)
    result = train_lora(options)
    assert result.eos_labelled == 1.0, f"answers trained to end with EOS: {result.eos_labelled:.0%}"
    first, last = sum(result.losses[:5]) / 5, sum(result.losses[-10:]) / 10
    assert last < 0.25 * first and last < 0.5, f"the adapter did not learn: {result.losses}"
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    eos = tokenizer.eos_token_id
    for line, ids in zip(lines, greedy_answers(base, tmp / "adapter", lines), strict=True):
        text = str(tokenizer.decode(ids))
        assert eos in ids, f"no EOS within 80 new tokens: {text!r}"
        assert ids.index(eos) == len(ids) - 1, "generation went on after EOS"
        answer = str(tokenizer.decode(ids[:-1]))
        assert answer.endswith("}"), f"EOS is not right after the closing brace: {text!r}"
        want = line["messages"][-1]["content"]
        assert orjson.loads(answer) == orjson.loads(want), f"{answer!r} != {want!r}"
        assert answer == want


def test_lora_reports_answers_not_trained_to_end_with_eos(
    tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A base model whose own template ends turns with `<|end|>` trains answers with no EOS
    in their labels: the share is 0, recorded, and `train-lora` says the adapter may not stop."""
    from training.lora import train_lora_cli

    lines = [chat_example(*r) for r in TRAINING_REVIEWS[:2]]
    base = tiny_model(tmp / "base", lines, chat_template=END_TAG_TEMPLATE)
    train = write_jsonl(tmp / "train.jsonl", lines)
    options = cpu_options(base, train, tmp / "adapter", steps=2, rank=4, batch_size=2)
    result = train_lora_cli(options)
    assert result.eos_labelled == 0.0
    meta = json.loads((tmp / "adapter" / METADATA_FILE).read_text())
    assert meta["eos_labelled"] == 0.0 and meta["chat_template"] is None
    out = capsys.readouterr().out
    assert "may not stop" in out and "`stop`" in out, out
