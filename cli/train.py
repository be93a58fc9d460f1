"""`train-lora`, `train-local` and `predict`: models trained here, and batch triage with a
local one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.app import fail


def train_lora(
    base: Annotated[str, typer.Option(help="Base model: a local directory (or a hub id).")],
    train: Annotated[Path, typer.Option(help="Training data, chat JSONL (from `export`).")],
    out: Annotated[Path, typer.Option(help="Directory for the adapter.")],
    val: Annotated[Path | None, typer.Option(help="Validation data, chat JSONL.")] = None,
    steps: Annotated[int, typer.Option(min=1, help="Optimizer steps.")] = 200,
    rank: Annotated[int, typer.Option(min=1, help="LoRA rank.")] = 16,
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 2e-4,
    batch_size: Annotated[int, typer.Option(min=1, help="Examples per device step.")] = 4,
    max_length: Annotated[int, typer.Option(min=16, help="Tokens per example.")] = 1024,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    bf16: Annotated[bool, typer.Option(help="bfloat16 mixed precision (GPU).")] = False,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
) -> None:
    """Train a LoRA adapter for self-hosting (vLLM --enable-lora); needs the `lora` extra."""
    try:
        from training.lora import LoraError, LoraOptions, train_lora_cli
    except ImportError as exc:
        raise fail(f"the `lora` extra is not installed ({exc}): pip install -e '.[lora]'") from None
    if device not in ("auto", "cpu", "cuda"):
        raise fail("--device must be auto, cpu or cuda")
    opts = LoraOptions(
        base=base,
        train=train,
        val=val,
        out=out,
        steps=steps,
        rank=rank,
        learning_rate=lr,
        batch_size=batch_size,
        max_length=max_length,
        device=device,  # type: ignore[arg-type]  # checked above
        bf16=bf16,
        seed=seed,
    )
    try:
        train_lora_cli(opts)
    except LoraError as exc:
        raise fail(str(exc)) from None


def train_local(
    data: Annotated[
        list[Path],
        typer.Option(help="Labelled data: JSONL/CSV (or chat JSONL, .arff, .xlsx); repeatable."),
    ],
    out: Annotated[Path, typer.Option(help="Model directory to write.")],
    val: Annotated[
        Path | None, typer.Option(help="Held-out labelled set: metrics go in the card.")
    ] = None,
    approach: Annotated[
        str,
        typer.Option(
            help="auto (tfidf; plus multilingual and minilm when their extras are installed, "
            "keeping the best within 5 ms p50 on --val, or on 15% of the data held out; minutes "
            "of CPU when minilm is installed: it fine-tunes an encoder) | tfidf | multilingual "
            "| minilm (English encoder; other languages go to its tfidf member)."
        ),
    ] = "auto",
    name: Annotated[str | None, typer.Option(help="Model name (default: DIR's name).")] = None,
    with_seed: Annotated[
        bool,
        typer.Option(
            "--with-seed",
            help="Add the project's seed reviews (six categories, seven languages, urgency "
            "labelled) to the training data.",
        ),
    ] = False,
) -> None:
    """Train a CPU local model (category + urgency, calibrated confidence) into DIR."""
    import json

    from training.data import DataError
    from training.local import APPROACHES, train_local

    if approach not in APPROACHES:
        raise fail(f"--approach must be one of {', '.join(APPROACHES)}")
    try:
        card = train_local(
            data,
            val,
            out,
            approach=approach,  # type: ignore[arg-type]
            name=name,
            include_seed=with_seed,
            progress=lambda msg: typer.echo(msg, err=True),
        )
    except (DataError, ValueError, RuntimeError, OSError) as exc:
        raise fail(str(exc)) from None
    keys = ("approach", "format", "metrics_val", "selection", "latency_ms")
    summary = {k: card[k] for k in keys if k in card}
    typer.echo(json.dumps({"out": str(out), **summary}, indent=2))


def predict(
    model: Annotated[Path, typer.Option(help="Local model directory (from train-local).")],
    data: Annotated[Path, typer.Option(help="Reviews, JSONL or CSV (labels ignored).")],
    out: Annotated[Path, typer.Option(help="JSONL to write: review_id, triage, confidence.")],
) -> None:
    """Offline batch triage of a file of reviews with a local model."""
    from gateway.local.loader import LocalModelError
    from training.data import DataError
    from training.predict import predict_file

    try:
        count = predict_file(model, data, out)
    except (LocalModelError, DataError, OSError) as exc:
        raise fail(str(exc)) from None
    typer.echo(f"wrote {count} predictions to {out}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.command("train-lora")(train_lora)
    app.command("train-local")(train_local)
    app.command()(predict)
