"""LoRA fine-tuning for self-hosting: SFT on the exported chat JSONL, an adapter vLLM can serve.

`triage-gateway train-lora --base MODEL_OR_DIR --train train.jsonl [--val val.jsonl] --out DIR`
trains a LoRA adapter (PEFT, all linear layers of the decoder, no extra trainable modules) with
TRL's `SFTTrainer` and writes `DIR/adapter_config.json` + `DIR/adapter_model.safetensors`, which
vLLM serves next to the base model:

    vllm serve BASE --enable-lora --max-lora-rank 16 --lora-modules triage=DIR

Each line `{"messages": [system, user, assistant]}` becomes a conversational prompt-completion
example (prompt: every message but the last; completion: the assistant's answer), so the loss
is computed on the answer only. A base model without a chat template gets `DEFAULT_CHAT_TEMPLATE`
(recorded in `DIR/triage_lora.json`; give vLLM the same template with `--chat-template`), which
ends each turn with the tokenizer's EOS token, so the answer's labels end with EOS and the
adapter stops after the JSON. `LoraResult.eos_labelled` (also in `triage_lora.json`) is the share
of training examples whose labels hold the EOS token; below 1 (a base template that ends turns
otherwise, or `max_length` cutting answers) the adapter may not stop, and the variant serving it
needs `stop` sequences (see the routes file).

Needs the optional `lora` extra (torch, transformers, peft, trl, datasets); importing this
module does not, so the CLI can say what is missing. CPU works for tiny models and smoke tests;
`device="cuda"` with `bf16=True` is the configuration for real runs.
"""

from __future__ import annotations

import importlib.util
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from training.finetune import FinetuneError, check_dataset, data_hash

Device = Literal["auto", "cpu", "cuda"]
REQUIRED = ("torch", "transformers", "peft", "trl", "datasets")
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
METADATA_FILE = "triage_lora.json"
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}"
    "{{ eos_token }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
"""Each turn ends with the tokenizer's EOS token: the completion the loss is computed on is the
answer followed by EOS, so the adapter learns to stop right after the JSON (TRL appends EOS
only to non-conversational data; a conversational example ends where its template says)."""


class LoraError(Exception):
    """The extra is missing, the data is invalid, or the device is not there."""


@dataclass(frozen=True, slots=True)
class LoraOptions:
    base: str
    """A model directory (or a hub id, where the hub can be reached)."""
    train: Path
    out: Path
    val: Path | None = None
    steps: int = 200
    rank: int = 16
    alpha: int | None = None
    """LoRA alpha (default 2 x rank)."""
    dropout: float = 0.05
    learning_rate: float = 2e-4
    batch_size: int = 4
    grad_accum: int = 1
    max_length: int = 1024
    device: Device = "auto"
    bf16: bool = False
    seed: int = 42
    logging_steps: int = 1
    target_modules: str | tuple[str, ...] = "all-linear"
    validate: bool = True


@dataclass
class LoraResult:
    adapter_dir: Path
    losses: list[float] = field(default_factory=list)
    """Training loss per logged step."""
    eval_loss: float | None = None
    steps: int = 0
    device: str = "cpu"
    seconds: float = 0.0
    eos_labelled: float = 0.0
    """Share of training examples whose labels (the tokens the loss is computed on) hold the
    tokenizer's EOS token: 1.0 means every answer is trained to end with EOS."""


def missing_packages() -> list[str]:
    """The packages of the `lora` extra that are not installed."""
    return [name for name in REQUIRED if importlib.util.find_spec(name) is None]


def load_examples(path: Path) -> list[dict[str, Any]]:
    """Chat lines as conversational prompt-completion examples."""
    out = []
    for raw in path.read_bytes().splitlines():
        if not raw.strip():
            continue
        messages = orjson.loads(raw)["messages"]
        out.append({"prompt": messages[:-1], "completion": messages[-1:]})
    return out


def _device(requested: Device) -> str:
    import torch

    if requested == "cuda" and not torch.cuda.is_available():
        raise LoraError("--device cuda: no CUDA device is visible to torch")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def train_lora(
    opts: LoraOptions, on_log: Callable[[dict[str, float]], None] | None = None
) -> LoraResult:
    """Train and save the adapter; `on_log` gets each logged step's figures."""
    if missing := missing_packages():
        raise LoraError(
            f"the `lora` extra is not installed (missing: {', '.join(missing)}): "
            "pip install -e '.[lora]'"
        )
    if opts.validate:
        try:
            for path in (opts.train, *([opts.val] if opts.val else [])):
                check_dataset(path)
        except FinetuneError as exc:
            raise LoraError(exc.message) from None
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        PrinterCallback,
        TrainerCallback,
    )
    from trl import SFTConfig, SFTTrainer

    device = _device(opts.device)
    start = time.monotonic()
    tokenizer = AutoTokenizer.from_pretrained(opts.base)
    added_template = tokenizer.chat_template is None
    if tokenizer.eos_token is None:
        raise LoraError(
            f"{opts.base}: the tokenizer has no EOS token, so the adapter could not learn to stop"
        )
    if added_template:
        tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dtype = torch.bfloat16 if opts.bf16 else torch.float32
    model = AutoModelForCausalLM.from_pretrained(opts.base, dtype=dtype)
    train_ds = Dataset.from_list(load_examples(opts.train))
    eval_ds = Dataset.from_list(load_examples(opts.val)) if opts.val is not None else None
    peft_config = LoraConfig(
        r=opts.rank,
        lora_alpha=opts.alpha or 2 * opts.rank,
        lora_dropout=opts.dropout,
        target_modules=opts.target_modules
        if isinstance(opts.target_modules, str)
        else list(opts.target_modules),
        task_type="CAUSAL_LM",
    )
    work_dir = opts.out / ".trainer"
    args = SFTConfig(
        output_dir=str(work_dir),
        max_steps=opts.steps,
        per_device_train_batch_size=opts.batch_size,
        per_device_eval_batch_size=opts.batch_size,
        gradient_accumulation_steps=opts.grad_accum,
        learning_rate=opts.learning_rate,
        lr_scheduler_type="constant_with_warmup",
        warmup_steps=min(10, opts.steps // 10),
        logging_steps=opts.logging_steps,
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        max_length=opts.max_length,
        completion_only_loss=True,
        bf16=opts.bf16,
        use_cpu=device == "cpu",
        seed=opts.seed,
        data_seed=opts.seed,
        disable_tqdm=True,
        dataloader_pin_memory=device == "cuda",
    )
    losses: list[float] = []

    class Collect(TrainerCallback):  # type: ignore[misc,unused-ignore]  # Any without the extra
        def on_log(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            logs = kwargs.get("logs") or {}
            if "loss" in logs:
                losses.append(float(logs["loss"]))
            if on_log is not None:
                figures = {k: float(v) for k, v in logs.items() if isinstance(v, int | float)}
                on_log({"step": float(state.global_step), **figures})

    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[Collect()],
    )
    trainer.remove_callback(PrinterCallback)  # `on_log` reports progress instead of raw dicts
    eos_labelled = _eos_labelled(trainer.train_dataset["labels"], tokenizer.eos_token_id)
    trainer.train()
    eval_loss: float | None = None
    if eval_ds is not None:
        eval_loss = float(trainer.evaluate()["eval_loss"])
    opts.out.mkdir(parents=True, exist_ok=True)
    trainer.model.save_pretrained(str(opts.out))
    result = LoraResult(
        adapter_dir=opts.out,
        losses=losses,
        eval_loss=eval_loss,
        steps=int(trainer.state.global_step),
        device=device,
        seconds=round(time.monotonic() - start, 3),
        eos_labelled=eos_labelled,
    )
    _write_metadata(opts, result, added_template)
    _remove_tree(work_dir)
    return result


def _write_metadata(opts: LoraOptions, result: LoraResult, added_template: bool) -> None:
    paths = [opts.train, *([opts.val] if opts.val else [])]
    meta = {
        "base_model": opts.base,
        "options": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in asdict(opts).items()
            if k not in ("train", "val", "out")
        },
        "training_data_hash": data_hash(paths),
        "steps": result.steps,
        "device": result.device,
        "seconds": result.seconds,
        "first_loss": result.losses[0] if result.losses else None,
        "final_loss": result.losses[-1] if result.losses else None,
        "eval_loss": result.eval_loss,
        "eos_labelled": result.eos_labelled,
        "chat_template": DEFAULT_CHAT_TEMPLATE if added_template else None,
    }
    (opts.out / METADATA_FILE).write_text(json.dumps(meta, indent=2) + "\n")


def _eos_labelled(labels: list[list[int]], eos_id: int) -> float:
    """Share of examples whose trained tokens (labels other than -100) include `eos_id`."""
    if not labels:
        return 0.0
    return round(sum(eos_id in row for row in labels) / len(labels), 4)


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def vllm_max_lora_rank(rank: int) -> int:
    """The smallest `--max-lora-rank` value vLLM accepts that fits `rank`."""
    return next((r for r in VLLM_LORA_RANKS if r >= rank), rank)


def train_lora_cli(opts: LoraOptions) -> LoraResult:
    """`train-lora`: train with a progress line per logged step, then a summary."""
    import datasets
    from rich.console import Console
    from transformers.utils import logging as hf_logging

    console = Console()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call,unused-ignore]
    datasets.disable_progress_bars()

    def show(figures: dict[str, float]) -> None:
        loss = figures.get("loss")
        if loss is not None:
            console.print(f"step {int(figures['step'])}/{opts.steps}  loss {loss:.4f}")

    try:
        result = train_lora(opts, on_log=show)
    except (OSError, ValueError) as exc:
        raise LoraError(f"{type(exc).__name__}: {exc}") from None
    final = result.losses[-1] if result.losses else math.nan
    console.print(
        f"adapter written to {result.adapter_dir} ({result.steps} steps on {result.device}, "
        f"{result.seconds:.0f} s, final loss {final:.4f}"
        + (f", eval loss {result.eval_loss:.4f}" if result.eval_loss is not None else "")
        + ")"
    )
    if result.eos_labelled < 1.0:
        console.print(
            f"warning: {1 - result.eos_labelled:.0%} of the training examples do not end with the "
            "tokenizer's EOS token (the chat template ends turns otherwise, or --max-length cuts "
            "answers): the adapter may not stop; give its variant `stop` sequences"
        )
    console.print(
        f"serve it: vllm serve {opts.base} --enable-lora --max-lora-rank "
        f"{vllm_max_lora_rank(opts.rank)} --lora-modules triage={result.adapter_dir}"
    )
    return result
