"""Hosted fine-tuning: check the chat JSONL, upload it, start a job, follow it, register the model.

`triage-gateway finetune` runs `finetune_and_register`:

1. `check_dataset` reads every line of the train and validation files: `{"messages": [...]}`
   with system/user/assistant messages ending with the assistant's answer, which must be the
   canonical triage JSON (`gateway.request.validate.validate_triage` accepts it without repair).
   Problems are reported as `file:line: problem` before anything is uploaded.
2. Both files are uploaded (`files.create(purpose="fine-tune")`) and a job is created
   (`fine_tuning.jobs.create`), then followed (`jobs.retrieve` + `jobs.list_events` every
   `poll_s`) with a live status panel (status, trained tokens, step, losses) and the events.
3. On success the model is registered (`gateway.experiments.model_registry`): kind hosted,
   endpoint = the provider's base URL, base model, sha256 of train + validation bytes, the
   job's final metrics (its result file, else its last metrics event), price, status candidate.

Both providers are driven through the official `openai` SDK. For Together this is its
OpenAI-compatible surface (base URL https://api.together.xyz/v1): the `together` SDK (3.1.1)
requires rich<15 while this project pins rich 15, so it is not a dependency. Together-only
parameters (LoRA, its learning rate) travel in the request body (`extra_body`).
The API key is passed in by the caller (the CLI takes it from its settings: OPENAI_API_KEY or
TOGETHER_API_KEY) and never printed or logged.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from gateway.experiments.config import Price
from gateway.experiments.model_registry import MetricValue, ModelRecord
from gateway.request.triage import DEFAULT_TAXONOMY, Taxonomy
from gateway.request.validate import TriageValidationError, validate_triage

if TYPE_CHECKING:
    from openai import OpenAI
    from openai.types.fine_tuning import FineTuningJob

    from gateway.infra.settings import Settings

Provider = Literal["openai", "together"]
PROVIDERS: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "together": "https://api.together.xyz/v1",
}
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
ROLES = frozenset({"system", "user", "assistant"})
MAX_PROBLEMS = 20
SUMMARY_METRICS = ("trained_tokens", "train_loss", "valid_loss", "full_valid_loss")


class FinetuneError(Exception):
    """Fine-tuning could not start, failed or did not finish; `exit_code` for the CLI."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass(frozen=True, slots=True)
class FinetuneOptions:
    provider: Provider
    base_model: str
    train: Path
    val: Path | None = None
    epochs: int | None = None
    learning_rate: float | None = None
    """OpenAI: the learning-rate multiplier; Together: the learning rate."""
    lora_rank: int | None = None
    """Together only (LoRA fine-tuning with this rank)."""
    suffix: str | None = None
    base_url: str | None = None
    name: str | None = None
    """Registry name (default: the fine-tuned model id)."""
    price: Price | None = None
    poll_s: float = 10.0
    timeout_s: float = 7200.0
    validate: bool = True
    taxonomy: Taxonomy = DEFAULT_TAXONOMY

    @property
    def endpoint(self) -> str:
        return (self.base_url or PROVIDERS[self.provider]).rstrip("/")


def _line_problem(raw: bytes, taxonomy: Taxonomy) -> str | None:
    try:
        line = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return f"not valid JSON ({exc})"
    messages = line.get("messages") if isinstance(line, dict) else None
    if not isinstance(messages, list) or not messages:
        return 'expected {"messages": [...]} with at least one message'
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or msg.get("role") not in ROLES:
            return f"messages[{i}]: role must be one of {sorted(ROLES)}"
        if not isinstance(msg.get("content"), str) or not msg["content"].strip():
            return f"messages[{i}]: content must be a non-empty string"
    if not any(m["role"] == "user" for m in messages):
        return "no user message"
    if messages[-1]["role"] != "assistant":
        return "the last message must be the assistant's answer"
    for i, msg in enumerate(messages):
        if msg["role"] != "assistant":
            continue
        try:
            checked = validate_triage(msg["content"], taxonomy)
        except TriageValidationError as exc:
            return f"messages[{i}]: the answer is not a valid triage ({exc.message})"
        if checked.repaired:
            return f"messages[{i}]: the answer needs repair; write it as the canonical JSON"
    return None


def check_dataset(path: Path, taxonomy: Taxonomy = DEFAULT_TAXONOMY) -> int:
    """The number of examples in a chat fine-tuning JSONL file; `FinetuneError` (exit code 2)
    listing up to `MAX_PROBLEMS` problems as `file:line: problem`."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FinetuneError(f"{path}: cannot read ({exc.strerror})", 2) from None
    problems: list[str] = []
    count = 0
    for n, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        count += 1
        problem = _line_problem(raw, taxonomy)
        if problem is not None:
            problems.append(f"{path}:{n}: {problem}")
    if count == 0:
        problems.append(f"{path}: no examples")
    if problems:
        more = len(problems) - MAX_PROBLEMS
        shown = problems[:MAX_PROBLEMS] + ([f"... and {more} more"] if more > 0 else [])
        raise FinetuneError("invalid training data:\n" + "\n".join(shown), 2)
    return count


def data_hash(paths: Iterable[Path]) -> str:
    """sha256 of the files' bytes, concatenated in order (train, then validation)."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def job_parameters(opts: FinetuneOptions) -> dict[str, Any]:
    """Keyword arguments of `jobs.create` for the provider's hyperparameters."""
    if opts.provider == "openai":
        if opts.lora_rank is not None:
            raise FinetuneError("--lora-rank: OpenAI fine-tuning has no LoRA rank", 2)
        hyper: dict[str, Any] = {}
        if opts.epochs is not None:
            hyper["n_epochs"] = opts.epochs
        if opts.learning_rate is not None:
            hyper["learning_rate_multiplier"] = opts.learning_rate
        if not hyper:
            return {}
        return {"method": {"type": "supervised", "supervised": {"hyperparameters": hyper}}}
    body: dict[str, Any] = {}
    if opts.epochs is not None:
        body["n_epochs"] = opts.epochs
    if opts.learning_rate is not None:
        body["learning_rate"] = opts.learning_rate
    if opts.lora_rank is not None:
        body.update(lora=True, lora_r=opts.lora_rank)
    return {"extra_body": body} if body else {}


@dataclass
class _Progress:
    """What the live panel shows."""

    job_id: str
    status: str = "created"
    trained_tokens: int | None = None
    step: str = "-"
    train_loss: float | None = None
    valid_loss: float | None = None
    started: float = 0.0
    last_metrics: dict[str, Any] | None = None

    def render(self, now: float) -> Table:
        table = Table(title=f"fine-tuning job {self.job_id}", show_header=False, expand=False)
        table.add_column(style="bold")
        table.add_column()
        table.add_row("status", self.status)
        table.add_row("elapsed", f"{now - self.started:.0f} s")
        tokens = f"{self.trained_tokens:,}" if self.trained_tokens is not None else "-"
        table.add_row("trained tokens", tokens)
        table.add_row("step", self.step)
        for label, value in (("train loss", self.train_loss), ("valid loss", self.valid_loss)):
            table.add_row(label, f"{value:.4f}" if value is not None else "-")
        return table

    def note_metrics(self, data: Any) -> None:
        if not isinstance(data, dict):
            return
        self.last_metrics = data
        if "step" in data:
            total = data.get("total_steps")
            self.step = f"{data['step']}/{total}" if total else str(data["step"])
        for key, attr in (("train_loss", "train_loss"), ("valid_loss", "valid_loss")):
            value = data.get(key)
            if isinstance(value, int | float):
                setattr(self, attr, float(value))


def follow_job(
    client: OpenAI,
    job_id: str,
    *,
    poll_s: float,
    timeout_s: float,
    console: Console,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[FineTuningJob, dict[str, Any] | None]:
    """Poll until the job is final; returns it and its last metrics event's data. Raises
    `FinetuneError` at `timeout_s` (the job goes on at the provider)."""
    progress = _Progress(job_id, started=clock())
    seen: set[str] = set()
    with Live(progress.render(clock()), console=console, refresh_per_second=4) as live:
        while True:
            job = client.fine_tuning.jobs.retrieve(job_id)
            page = client.fine_tuning.jobs.list_events(job_id, limit=100)
            for event in reversed(page.data):  # the API lists newest first
                if event.id in seen:
                    continue
                seen.add(event.id)
                if event.type == "metrics":
                    progress.note_metrics(event.data)
                style = {"error": "red", "warn": "yellow"}.get(event.level, "")
                live.console.print(Text(f"[{event.level}] {event.message}", style=style))
            progress.status = job.status
            progress.trained_tokens = job.trained_tokens
            live.update(progress.render(clock()))
            if job.status in TERMINAL:
                break
            if clock() - progress.started > timeout_s:
                raise FinetuneError(
                    f"job {job_id} still {job.status} after {timeout_s:.0f} s; it goes on at "
                    "the provider (cancel it there, or register the model when it is done "
                    "with `triage-gateway models add`)"
                )
            sleep(poll_s)
    if not console.is_terminal:
        console.line()  # a non-terminal Live leaves its last frame without a line end
    return job, progress.last_metrics


def _result_metrics(client: OpenAI, job: FineTuningJob) -> dict[str, MetricValue]:
    """The last row of the job's result file (a CSV of per-step metrics), when there is one."""
    if not job.result_files:
        return {}
    text = client.files.content(job.result_files[0]).text
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        return {}
    out: dict[str, MetricValue] = {}
    for key, value in rows[-1].items():
        if not key or value is None or value == "":
            continue
        for parse in (int, float):
            try:
                out[key] = parse(value)
                break
            except ValueError:
                continue
        else:
            out[key] = value
    return out


def job_metrics(
    client: OpenAI, job: FineTuningJob, last_event: dict[str, Any] | None
) -> dict[str, MetricValue]:
    """Final metrics: trained tokens, then the result file's last row, else the last metrics
    event's data."""
    metrics: dict[str, MetricValue] = {}
    if job.trained_tokens is not None:
        metrics["trained_tokens"] = job.trained_tokens
    try:
        from_file = _result_metrics(client, job)
    except Exception:  # a result file is a bonus: no metrics is better than no registration
        from_file = {}
    if not from_file and last_event:
        from_file = {k: v for k, v in last_event.items() if isinstance(v, int | float | str | bool)}
    metrics.update(from_file)
    return metrics


def _upload(client: OpenAI, path: Path, console: Console) -> str:
    with path.open("rb") as f:
        uploaded = client.files.create(file=(path.name, f), purpose="fine-tune")
    console.print(f"uploaded {path} as {uploaded.id} ({uploaded.bytes:,} bytes)")
    return uploaded.id


def run_finetune(opts: FinetuneOptions, client: OpenAI, console: Console) -> ModelRecord:
    """Check, upload, train and follow; the record to register (not yet stored)."""
    from openai import APIError

    paths = [opts.train, *([opts.val] if opts.val is not None else [])]
    counts: dict[str, MetricValue] = {}
    if opts.validate:
        for label, path in zip(("train_examples", "val_examples"), paths, strict=False):
            counts[label] = check_dataset(path, opts.taxonomy)
        console.print(
            "data checked: " + ", ".join(f"{v} {k.split('_')[0]}" for k, v in counts.items())
        )
    params = job_parameters(opts)
    digest = data_hash(paths)
    try:
        train_id = _upload(client, opts.train, console)
        val_id = _upload(client, opts.val, console) if opts.val is not None else None
        job = client.fine_tuning.jobs.create(
            model=opts.base_model,
            training_file=train_id,
            validation_file=val_id,
            suffix=opts.suffix,
            **params,
        )
        console.print(f"{opts.provider} fine-tuning job {job.id} created on {opts.base_model}")
        try:
            job, last_event = follow_job(
                client, job.id, poll_s=opts.poll_s, timeout_s=opts.timeout_s, console=console
            )
        except KeyboardInterrupt:
            raise FinetuneError(
                f"stopped following job {job.id}; it goes on at the provider", 130
            ) from None
        if job.status != "succeeded":
            reason = job.error.message if job.error is not None else "no reason given"
            code = f" [{job.error.code}]" if job.error is not None and job.error.code else ""
            raise FinetuneError(f"fine-tuning job {job.id} {job.status}: {reason}{code}")
        if not job.fine_tuned_model:
            raise FinetuneError(f"fine-tuning job {job.id} succeeded without a model id")
        metrics = {**counts, **job_metrics(client, job, last_event)}
    except APIError as exc:
        status = getattr(exc, "status_code", None)
        where = f"HTTP {status}" if status is not None else type(exc).__name__
        raise FinetuneError(f"{opts.provider} API error ({where}): {exc.message}") from None
    return ModelRecord(
        name=opts.name or job.fine_tuned_model,
        kind="hosted",
        model=job.fine_tuned_model,
        endpoint=opts.endpoint,
        provider=opts.provider,
        base_model=opts.base_model,
        training_data_hash=digest,
        metrics=metrics,
        price=opts.price,
        status="candidate",
        job_id=job.id,
    )


def record_table(record: ModelRecord) -> Table:
    """One registry record as a two-column table."""
    table = Table(title=f"model {record.name}", show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    data = record.model_dump(mode="json")
    for key, value in data.items():
        if key == "metrics":
            value = ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
        elif key == "price" and value is not None:
            value = f"in {value['input_per_1m']} / out {value['output_per_1m']} USD per 1M"
        table.add_row(key, "-" if value is None else str(value))
    return table


def registry_table(
    records: Iterable[ModelRecord], statuses: Mapping[str, str] | None = None
) -> Table:
    """The registry as a table (`models list`); `statuses`: the live status of each model
    (`model_registry.live_statuses`), shown instead of the stored label."""
    table = Table(title="model registry")
    for column in ("name", "kind", "status", "base model", "where", "price", "metrics", "created"):
        table.add_column(column, overflow="fold")
    for r in records:
        price = f"{r.price.input_per_1m:g} / {r.price.output_per_1m:g}" if r.price else "-"
        shown = {k: v for k, v in r.metrics.items() if k in SUMMARY_METRICS}
        metrics = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()
        )
        status = (statuses or {}).get(r.name, r.status)
        style = {"retired": "dim", "live": "green", "serving": "green", "shadow": "cyan"}.get(
            status.split(" ")[0].rstrip(","), ""
        )
        table.add_row(
            r.name,
            r.kind,
            Text(status, style=style),
            r.base_model or "-",
            r.endpoint or r.path or "-",
            price,
            metrics or "-",
            r.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    return table


def finetune_and_register(
    settings: Settings, opts: FinetuneOptions, api_key: str, console: Console | None = None
) -> ModelRecord:
    """The `finetune` command: train at the provider, then register the model in the
    gateway's Redis."""
    from openai import OpenAI

    from gateway.experiments import model_registry
    from training.export import with_redis

    console = console or Console()
    client = OpenAI(api_key=api_key, base_url=opts.endpoint, max_retries=3, timeout=120.0)
    try:
        record = run_finetune(opts, client, console)
    finally:
        client.close()

    async def register(redis: Any, _stream: str) -> ModelRecord:
        return await model_registry.register(redis, record)

    try:
        asyncio.run(with_redis(settings, register))
    except Exception as exc:
        raise FinetuneError(
            f"model {record.model} trained but not registered: {exc} "
            "(register it with `triage-gateway models add`)"
        ) from None
    console.print(record_table(record))
    console.print(f"registered {record.name!r} (status candidate)")
    return record


__all__ = [
    "PROVIDERS",
    "FinetuneError",
    "FinetuneOptions",
    "check_dataset",
    "data_hash",
    "finetune_and_register",
    "follow_job",
    "job_metrics",
    "job_parameters",
    "record_table",
    "registry_table",
    "run_finetune",
]
