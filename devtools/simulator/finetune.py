"""The simulator's OpenAI-style fine-tuning API, for tests and demos of `triage-gateway finetune`.

Routes (registered on the simulator app by `add_finetune_routes`):

    POST /v1/files                          multipart `file` + `purpose`
    GET  /v1/files/{id}                     the file object
    GET  /v1/files/{id}/content             the bytes (training data, or a job's result CSV)
    POST /v1/fine_tuning/jobs               create a job
    GET  /v1/fine_tuning/jobs               list jobs, newest first
    GET  /v1/fine_tuning/jobs/{id}          the job: its status follows the clock
    GET  /v1/fine_tuning/jobs/{id}/events   events, newest first (`limit`, `after`)
    POST /v1/fine_tuning/jobs/{id}/cancel   cancel a job that has not finished
    POST /_finetune/control                 change `FinetuneConfig` at run time

A job's status is worked out from the time since it was created, without background tasks:
`validating_files` for `validating_s`, `queued` for `queued_s`, `running` for `running_s`
(with `steps` metrics events), then `succeeded` with `fine_tuned_model` =
`ft:<base>:<suffix>:<job id>`, `trained_tokens` and one result file (a CSV of the metrics, like
OpenAI's). Faults: a training or validation file with a line that is not a chat example
(`{"messages": [...]}` with a final assistant message) fails the job after validation with
`error.code = "invalid_training_file"` and a message naming the line; `fail_message` (control)
fails every new job with that message.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from aiohttp import BodyPartReader, web

from devtools.simulator import http

__all__ = ["FinetuneConfig", "add_finetune_routes", "check_chat_jsonl"]

ROLES = frozenset({"system", "user", "assistant"})
RESULT_HEADER = "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy"


@dataclass
class FinetuneConfig:
    """Timings (seconds) of a simulated job's phases, and its fault knobs."""

    validating_s: float = 0.5
    queued_s: float = 0.5
    running_s: float = 2.0
    steps: int = 10
    """Metrics events while running (one per step)."""
    fail_message: str | None = None
    """When set, every new job fails after validation with this message."""
    max_file_bytes: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        for name in ("validating_s", "queued_s", "running_s"):
            http.check_non_negative(name, getattr(self, name))
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps must be an integer >= 1, got {self.steps!r}")


@dataclass
class _File:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
        }


@dataclass
class _Job:
    id: str
    model: str
    training_file: str
    validation_file: str | None
    suffix: str | None
    hyperparameters: dict[str, Any]
    created_at: int
    started: float  # time.monotonic() at creation
    timings: tuple[float, float, float]  # validating, queued, running
    steps: int
    tokens: int
    error: dict[str, Any] | None
    seed: int
    cancelled_after: float | None = None
    result_file: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def phase_ends(self) -> tuple[float, float, float]:
        v, q, r = self.timings
        return v, v + q, v + q + r

    def status(self) -> str:
        t = self.elapsed()
        validated, queued, ran = self.phase_ends()
        if self.cancelled_after is not None:
            return "cancelled"
        if t < validated:
            return "validating_files"
        if self.error is not None:
            return "failed"
        if t < queued:
            return "queued"
        if t < ran:
            return "running"
        return "succeeded"

    def finished_after(self) -> float | None:
        """Seconds after creation at which the job reached its final state, if it has."""
        status = self.status()
        if status == "cancelled":
            return self.cancelled_after
        if status == "failed":
            return self.phase_ends()[0]
        if status == "succeeded":
            return self.phase_ends()[2]
        return None

    def fine_tuned_model(self) -> str:
        return f"ft:{self.model}:{self.suffix or 'model'}:{self.id}"

    def losses(self, step: int) -> dict[str, float]:
        """Deterministic, decreasing training curves."""
        k = step / self.steps
        return {
            "train_loss": round(0.2 + 1.8 * math.exp(-3.0 * k), 4),
            "train_accuracy": round(0.55 + 0.4 * (1 - math.exp(-3.0 * k)), 4),
            "valid_loss": round(0.25 + 1.8 * math.exp(-2.8 * k), 4),
            "valid_mean_token_accuracy": round(0.5 + 0.42 * (1 - math.exp(-2.8 * k)), 4),
        }

    def view(self) -> dict[str, Any]:
        status = self.status()
        done = self.finished_after()
        ran = self.phase_ends()[2]
        return {
            "id": self.id,
            "object": "fine_tuning.job",
            "model": self.model,
            "created_at": self.created_at,
            "finished_at": self.created_at + math.ceil(done) if done is not None else None,
            "fine_tuned_model": self.fine_tuned_model() if status == "succeeded" else None,
            "organization_id": "org-simulator",
            "result_files": [self.result_file]
            if status == "succeeded" and self.result_file
            else [],
            "status": status,
            "validation_file": self.validation_file,
            "training_file": self.training_file,
            "hyperparameters": self.hyperparameters,
            "trained_tokens": self.tokens if status == "succeeded" else None,
            "error": self.error if status == "failed" else None,
            "seed": self.seed,
            "estimated_finish": self.created_at + math.ceil(ran) if done is None else None,
            "integrations": [],
            "metadata": None,
            "method": {
                "type": "supervised",
                "supervised": {"hyperparameters": self.hyperparameters},
            },
            "suffix": self.suffix,
            **self.extra,
        }

    def events(self) -> list[dict[str, Any]]:
        """Every event up to now, oldest first."""
        validated, queued, ran = self.phase_ends()
        timeline: list[tuple[float, str, str, dict[str, Any] | None]] = [
            (0.0, "info", f"Validating training file: {self.training_file}", None),
        ]
        if self.validation_file:
            timeline.append(
                (0.0, "info", f"Validating validation file: {self.validation_file}", None)
            )
        if self.error is not None:
            timeline.append((validated, "error", str(self.error["message"]), None))
        else:
            timeline += [
                (validated, "info", "Files validated, moving job to queued state", None),
                (queued, "info", "Fine-tuning job started", None),
            ]
            for step in range(1, self.steps + 1):
                at = queued + (ran - queued) * step / self.steps
                curves = self.losses(step)
                metrics: dict[str, Any] = {"step": step, "total_steps": self.steps, **curves}
                message = (
                    f"Step {step}/{self.steps}: training loss={curves['train_loss']:.4f}, "
                    f"validation loss={curves['valid_loss']:.4f}"
                )
                timeline.append((at, "info", message, metrics))
            timeline += [
                (ran, "info", f"New fine-tuned model created: {self.fine_tuned_model()}", None),
                (ran, "info", "The job has successfully completed", None),
            ]
        if self.cancelled_after is not None:
            timeline = [e for e in timeline if e[0] <= self.cancelled_after]
            timeline.append((self.cancelled_after, "info", "Fine-tuning job cancelled", None))
        now = self.elapsed()
        out = []
        for n, (at, level, message, data) in enumerate(timeline):
            if at > now:
                break
            out.append(
                {
                    "id": f"ftevent-{self.id[6:]}-{n:04d}",
                    "object": "fine_tuning.job.event",
                    "created_at": self.created_at + int(at),
                    "level": level,
                    "message": message,
                    "data": data,
                    "type": "metrics" if data is not None else "message",
                }
            )
        return out


class _FinetuneState:
    def __init__(self, config: FinetuneConfig, require_key: Callable[[], bool]) -> None:
        self.config = config
        self.require_key = require_key
        self.files: dict[str, _File] = {}
        self.jobs: dict[str, _Job] = {}

    def new_id(self, prefix: str) -> str:
        return f"{prefix}-{os.urandom(12).hex()}"


FT_STATE = web.AppKey("finetune_state", _FinetuneState)
_Handler = Callable[[web.Request], Awaitable[web.Response]]
_T = TypeVar("_T")


def _error(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> web.Response:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return http.error_response(status, message, kind, code, param=param)


def check_chat_jsonl(data: bytes) -> tuple[int, str | None]:
    """(number of examples, the first problem or None) for an OpenAI chat fine-tuning file."""
    count = 0
    for n, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        count += 1
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return count, f"line {n} is not valid JSON"
        messages = line.get("messages") if isinstance(line, dict) else None
        if not isinstance(messages, list) or not messages:
            return count, f"line {n} has no 'messages' array"
        for msg in messages:
            if (
                not isinstance(msg, dict)
                or msg.get("role") not in ROLES
                or not isinstance(msg.get("content"), str)
            ):
                return count, f"line {n}: each message needs a role and a string content"
        if messages[-1].get("role") != "assistant":
            return count, f"line {n}: the last message must be the assistant's"
    if count == 0:
        return 0, "the file has no examples"
    return count, None


def _authorised(handler: _Handler) -> _Handler:
    """`handler` behind the bearer-key check, which every call of the API but the control
    call passes, as the real APIs do."""

    @functools.wraps(handler)
    async def checked(request: web.Request) -> web.Response:
        denied = http.unauthorized(request, request.app[FT_STATE].require_key())
        return denied if denied is not None else await handler(request)

    return checked


def _lookup(
    request: web.Request, table: Mapping[str, _T], missing: str, code: str | None
) -> _T | web.Response:
    """The object the path's `{id}` names in `table`, or the 404 whose message is `missing`
    with the id put in."""
    key = request.match_info["id"]
    found = table.get(key)
    return found if found is not None else _error(404, missing.format(key), "id", code)


@_authorised
async def _upload(request: web.Request) -> web.Response:
    st = request.app[FT_STATE]
    if not request.content_type.startswith("multipart/"):
        return _error(400, "expected a multipart/form-data body", None, "invalid_request")
    purpose: str | None = None
    filename, data = "", b""
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == "purpose":
            purpose = (await part.read()).decode()
        elif part.name == "file":
            filename = part.filename or "upload.jsonl"
            chunks, size = [], 0
            while chunk := await part.read_chunk():
                size += len(chunk)
                if size > st.config.max_file_bytes:
                    return _error(413, "file too large", "file", "file_too_large")
                chunks.append(chunk)
            data = b"".join(chunks)
    if purpose is None:
        return _error(400, "'purpose' is required", "purpose", "invalid_request")
    if not filename:
        return _error(400, "'file' is required", "file", "invalid_request")
    file = _File(st.new_id("file"), filename, purpose, data, int(time.time()))
    st.files[file.id] = file
    return http.json_response(file.view())


def _file(request: web.Request) -> _File | web.Response:
    files = request.app[FT_STATE].files
    return _lookup(request, files, "No such File object: {}", "file_not_found")


@_authorised
async def _get_file(request: web.Request) -> web.Response:
    file = _file(request)
    return file if isinstance(file, web.Response) else http.json_response(file.view())


@_authorised
async def _file_content(request: web.Request) -> web.Response:
    file = _file(request)
    if isinstance(file, web.Response):
        return file
    return web.Response(body=file.data, content_type="application/octet-stream")


def _hyperparameters(body: dict[str, Any]) -> dict[str, Any]:
    given: dict[str, Any] = dict(body.get("hyperparameters") or {})
    method = body.get("method")
    if isinstance(method, dict) and isinstance(method.get("supervised"), dict):
        given.update(method["supervised"].get("hyperparameters") or {})
    # Together-style top-level fields, accepted too.
    for ours, theirs in (("n_epochs", "n_epochs"), ("learning_rate_multiplier", "learning_rate")):
        if theirs in body and ours not in given:
            given[ours] = body[theirs]

    def pick(name: str, default: Any) -> Any:
        value = given.get(name, "auto")
        return default if value in (None, "auto") else value

    return {
        "n_epochs": pick("n_epochs", 3),
        "batch_size": pick("batch_size", 1),
        "learning_rate_multiplier": pick("learning_rate_multiplier", 2.0),
    }


@_authorised
async def _create_job(request: web.Request) -> web.Response:
    st = request.app[FT_STATE]
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return _error(400, "request body is not valid JSON", None, "invalid_request")
    if not isinstance(body, dict):
        return _error(400, "request body must be a JSON object", None, "invalid_request")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return _error(400, "'model' must be a non-empty string", "model", "invalid_request")
    files: dict[str, _File | None] = {}
    for param in ("training_file", "validation_file"):
        ref = body.get(param)
        if ref is None and param == "validation_file":
            files[param] = None
            continue
        found = st.files.get(ref) if isinstance(ref, str) else None
        if found is None:
            return _error(400, f"invalid {param}: {ref}", param, "invalid_file")
        files[param] = found
    suffix = body.get("suffix")
    if suffix is not None and (not isinstance(suffix, str) or len(suffix) > 64):
        return _error(400, "'suffix' must be a string of at most 64 characters", "suffix", None)
    try:
        hyper = _hyperparameters(body)
        epochs = int(hyper["n_epochs"])
    except (TypeError, ValueError, AttributeError):
        return _error(400, "invalid hyperparameters", "hyperparameters", "invalid_request")
    train = files["training_file"]
    assert train is not None
    error: dict[str, Any] | None = None
    for param, file in files.items():
        if file is None or error is not None:
            continue
        _, problem = check_chat_jsonl(file.data)
        if problem is not None:
            which = "Training" if param == "training_file" else "Validation"
            error = {
                "code": "invalid_training_file" if param == "training_file" else "invalid_file",
                "message": (
                    f"{which} file {file.id} has an invalid format: {problem}. "
                    'Each line must be a chat example: {"messages": [...]}.'
                ),
                "param": param,
            }
    if error is None and st.config.fail_message:
        error = {"code": "simulated_failure", "message": st.config.fail_message, "param": None}
    cfg = st.config
    job = _Job(
        id=st.new_id("ftjob"),
        model=model,
        training_file=train.id,
        validation_file=files["validation_file"].id if files["validation_file"] else None,
        suffix=suffix,
        hyperparameters=hyper,
        created_at=int(time.time()),
        started=time.monotonic(),
        timings=(cfg.validating_s, cfg.queued_s, cfg.running_s),
        steps=cfg.steps,
        tokens=max(1, len(train.data) // 4) * max(1, epochs),
        error=error,
        seed=int(body.get("seed") or 42),
    )
    if "lora" in body or "lora_r" in body:  # Together-style LoRA fields, echoed back
        job.extra = {"lora": bool(body.get("lora", True)), "lora_r": body.get("lora_r")}
    job.result_file = st.new_id("file")
    st.jobs[job.id] = job
    return http.json_response(job.view())


def _job(request: web.Request) -> _Job | web.Response:
    return _lookup(request, request.app[FT_STATE].jobs, "fine-tuning job {} not found", None)


def _materialise_results(st: _FinetuneState, job: _Job) -> None:
    """Create the result CSV file once the job has succeeded."""
    if job.status() != "succeeded" or job.result_file is None or job.result_file in st.files:
        return
    rows = [RESULT_HEADER]
    for step in range(1, job.steps + 1):
        c = job.losses(step)
        rows.append(
            f"{step},{c['train_loss']},{c['train_accuracy']},{c['valid_loss']},"
            f"{c['valid_mean_token_accuracy']}"
        )
    data = ("\n".join(rows) + "\n").encode()
    created = job.created_at + math.ceil(job.phase_ends()[2])
    st.files[job.result_file] = _File(
        job.result_file, "step_metrics.csv", "fine-tune-results", data, created
    )


@_authorised
async def _get_job(request: web.Request) -> web.Response:
    job = _job(request)
    if isinstance(job, web.Response):
        return job
    _materialise_results(request.app[FT_STATE], job)
    return http.json_response(job.view())


@_authorised
async def _list_jobs(request: web.Request) -> web.Response:
    st = request.app[FT_STATE]
    jobs = sorted(st.jobs.values(), key=lambda j: j.started, reverse=True)
    for job in jobs:
        _materialise_results(st, job)
    return http.json_response(
        {"object": "list", "data": [j.view() for j in jobs], "has_more": False}
    )


@_authorised
async def _events(request: web.Request) -> web.Response:
    job = _job(request)
    if isinstance(job, web.Response):
        return job
    try:
        limit = max(1, min(100, int(request.query.get("limit", "20"))))
    except ValueError:
        return _error(400, "'limit' must be an integer", "limit", None)
    events = list(reversed(job.events()))  # newest first, as OpenAI lists them
    after = request.query.get("after")
    if after:
        ids = [e["id"] for e in events]
        events = events[ids.index(after) + 1 :] if after in ids else []
    page = events[:limit]
    return http.json_response({"object": "list", "data": page, "has_more": len(events) > limit})


@_authorised
async def _cancel(request: web.Request) -> web.Response:
    job = _job(request)
    if isinstance(job, web.Response):
        return job
    if job.status() in ("succeeded", "failed", "cancelled"):
        return _error(400, f"Job has already {job.status()}", None, "invalid_state")
    job.cancelled_after = job.elapsed()
    return http.json_response(job.view())


async def _control(request: web.Request) -> web.Response:
    st = request.app[FT_STATE]

    def apply(patch: dict[str, Any]) -> dict[str, Any]:
        http.check_fields(FinetuneConfig, patch, "finetune config")
        st.config = dataclasses.replace(st.config, **patch)
        return dataclasses.asdict(st.config)

    return await http.control_call(request, apply)


def add_finetune_routes(
    app: web.Application,
    config: FinetuneConfig | None = None,
    *,
    require_key: Callable[[], bool] = lambda: False,
) -> None:
    """Serve the fine-tuning API on `app`; `require_key` says whether to answer 401 to calls
    without a bearer key (the simulator passes its own setting)."""
    app[FT_STATE] = _FinetuneState(config or FinetuneConfig(), require_key)
    app.router.add_post("/v1/files", _upload)
    app.router.add_get("/v1/files/{id}", _get_file)
    app.router.add_get("/v1/files/{id}/content", _file_content)
    app.router.add_post("/v1/fine_tuning/jobs", _create_job)
    app.router.add_get("/v1/fine_tuning/jobs", _list_jobs)
    app.router.add_get("/v1/fine_tuning/jobs/{id}", _get_job)
    app.router.add_get("/v1/fine_tuning/jobs/{id}/events", _events)
    app.router.add_post("/v1/fine_tuning/jobs/{id}/cancel", _cancel)
    app.router.add_post("/_finetune/control", _control)
