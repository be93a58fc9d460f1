"""An OpenAI/OpenRouter-compatible upstream simulator for tests, load tests and benchmarks.

Serves `POST /v1/chat/completions` with triage answers shaped by per-model profiles
(`simulator.profiles`: accuracy on reviews whose label it knows, lognormal latency, price,
error and invalid-output rates; keyword heuristics otherwise, see `simulator.triage`), plus
injected faults (HTTP 500, 429, hangs, broken JSON), configurable per model and changeable at
run time through `POST /_control`. Built on bare aiohttp + orjson because it
is the "direct" baseline in benchmarks: it must cost far less CPU than the gateway in front.
It also serves an OpenAI-style fine-tuning API (files, jobs, events; `simulator_finetune`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import math
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from devtools.simulator import http
from devtools.simulator.finetune import add_finetune_routes
from devtools.simulator.profiles import (
    BUILTIN_PROFILES,
    DEFAULT_PROFILE,
    Label,
    ModelProfile,
    ProfileFile,
    load_labels,
    parse_profile,
    parse_profiles,
    profile_answer,
)
from devtools.simulator.triage import (
    INVALID_VARIANTS,
    REPAIRABLE_VARIANTS,
    broken_content,
)

__all__ = [
    "DEFAULT_LATENCY_MS",
    "DEFAULT_PRICE",
    "FAULT_KINDS",
    "INVALID_VARIANTS",
    "REPAIRABLE_VARIANTS",
    "FaultOverrides",
    "RunningSimulator",
    "SimulatorConfig",
    "apply_patch",
    "create_simulator_app",
    "run_simulator",
    "serve_simulator",
    "start_simulator",
    "with_profile_file",
]
log = logging.getLogger(__name__)

FAULT_KINDS = ("timeout", "rate_limit", "error", "invalid")  # drawn in this order from one number
RATE_FIELDS = ("timeout_rate", "rate_limit_rate", "error_rate", "invalid_rate")
DEFAULT_PRICE = (2.50, 10.0)  # USD per 1M input / output tokens
DEFAULT_LATENCY_MS = 50.0  # for a model whose profile gives no latency
PROFILE_RATES = ("error_rate", "invalid_rate")  # the rates a profile may set


def _check(obj: object, nullable: bool) -> None:
    for name in (*RATE_FIELDS, "latency_ms", "jitter_ms", "hang_s"):
        value = getattr(obj, name)
        if value is None and (nullable or name == "latency_ms"):
            continue
        http.check_non_negative(name, value)
        if name in RATE_FIELDS and value > 1:
            raise ValueError(f"{name} must be a fraction in 0..1, got {value!r}")


@dataclass
class FaultOverrides:
    """Per-model replacements for the config's latency and fault settings (None = inherit)."""

    latency_ms: float | None = None
    jitter_ms: float | None = None
    error_rate: float | None = None
    rate_limit_rate: float | None = None
    timeout_rate: float | None = None
    invalid_rate: float | None = None
    hang_s: float | None = None

    def __post_init__(self) -> None:
        _check(self, nullable=True)


@dataclass(frozen=True, slots=True)
class _Faults:
    latency_s: float  # fixed, or the lognormal's median when sigma > 0
    sigma: float
    jitter_s: float
    hang_s: float
    cuts: tuple[float, ...]  # cumulative thresholds, one per FAULT_KINDS

    def draw(self, rng: random.Random) -> str | None:
        if self.cuts[-1] <= 0:
            return None
        r = rng.random()
        return next((k for k, cut in zip(FAULT_KINDS, self.cuts, strict=True) if r < cut), None)

    def delay(self, rng: random.Random) -> float:
        base = self.latency_s
        if self.sigma > 0:
            base *= math.exp(self.sigma * rng.gauss(0.0, 1.0))
        extra = rng.expovariate(1.0 / self.jitter_s) if self.jitter_s > 0 else 0.0
        return base + extra


@dataclass
class SimulatorConfig:
    """Profiles, latency, faults and prices. Fault kinds are exclusive: their rates must sum to
    <= 1.

    Per model, a setting comes from the first of: `model_overrides` (changed at run time), the
    model's profile, this config. Latency: `latency_ms`, when set, is a fixed latency for every
    model without an override (benchmarks and tests use it); otherwise the profile's lognormal
    latency times `latency_scale`, or DEFAULT_LATENCY_MS. Price: `prices`, then the profile's,
    then `default_price`."""

    latency_ms: float | None = None
    latency_scale: float = 1.0
    jitter_ms: float = 0.0  # mean of an exponential extra delay added to the latency
    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    timeout_rate: float = 0.0
    invalid_rate: float = 0.0
    hang_s: float = 30.0
    seed: int | None = None
    model_overrides: dict[str, FaultOverrides] = field(default_factory=dict)
    prices: dict[str, tuple[float, float]] = field(default_factory=dict)
    default_price: tuple[float, float] = DEFAULT_PRICE
    report_cost: bool = True
    require_key: bool = False  # answer 401 without a bearer key, like the real APIs
    models: tuple[str, ...] = ()  # listed by /v1/models besides the models seen
    profiles: tuple[ModelProfile, ...] = BUILTIN_PROFILES  # the first that matches wins
    default_profile: ModelProfile = DEFAULT_PROFILE  # for models no profile matches
    label_files: tuple[str, ...] = ()  # labelled JSONL files known besides the seed set
    seed_labels: bool = True  # know the labels of the project's seed set

    def __post_init__(self) -> None:
        _check(self, nullable=False)
        if isinstance(self.latency_scale, bool) or not self.latency_scale >= 0:
            raise ValueError(f"latency_scale must be a number >= 0, got {self.latency_scale!r}")
        plain = ModelProfile(name="")  # a profile's rates mix with these: cut, not refused
        for model, over in (("", FaultOverrides()), *self.model_overrides.items()):
            if sum(self._rates(over, plain)) > 1 + 1e-9:
                raise ValueError(f"fault rates for model {model or '*'!r} sum to more than 1")

    def profile_for(self, model: str) -> ModelProfile:
        return next((p for p in self.profiles if p.matches(model)), self.default_profile)

    def faults_for(self, model: str) -> _Faults:
        over = self.model_overrides.get(model) or FaultOverrides()
        return self._faults(over, self.profile_for(model))

    def price_for(self, model: str) -> tuple[float, float]:
        if model in self.prices:
            return self.prices[model]
        price = self.profile_for(model).price
        return self.default_price if price is None else (price.input_per_1m, price.output_per_1m)

    def _pick(self, o: FaultOverrides, profile: ModelProfile, name: str) -> float:
        for source in (o, profile if name in PROFILE_RATES else None, self):
            value = getattr(source, name, None)
            if value is not None:
                return float(value)
        raise AssertionError(name)  # the config sets every field

    def _rates(self, o: FaultOverrides, profile: ModelProfile) -> list[float]:
        return [self._pick(o, profile, name) for name in RATE_FIELDS]

    def _faults(self, o: FaultOverrides, profile: ModelProfile) -> _Faults:
        # Kinds are drawn in FAULT_KINDS order: past 1, the later kinds are cut.
        cuts = tuple(min(1.0, c) for c in itertools.accumulate(self._rates(o, profile)))
        jitter_s, hang_s = (
            self._pick(o, profile, "jitter_ms") / 1e3,
            self._pick(o, profile, "hang_s"),
        )
        sigma = 0.0
        if o.latency_ms is not None:
            latency_ms = o.latency_ms
        elif self.latency_ms is not None:
            latency_ms = self.latency_ms
        elif profile.latency is not None:
            latency_ms = profile.latency.median_ms * self.latency_scale
            sigma = profile.latency.sigma
        else:
            latency_ms = DEFAULT_LATENCY_MS
        return _Faults(latency_ms / 1e3, sigma, jitter_s, hang_s, cuts)


def with_profile_file(
    config: SimulatorConfig, spec: ProfileFile, latency_scale: float | None = None
) -> SimulatorConfig:
    """`config` with a profiles file's profiles (matched before the built-in ones, which it may
    drop), default profile and latency scale (`latency_scale`, when given, wins)."""
    scale = next((s for s in (latency_scale, spec.latency_scale) if s is not None), 1.0)
    return dataclasses.replace(
        config,
        profiles=(*spec.profiles, *(BUILTIN_PROFILES if spec.builtin else ())),
        default_profile=spec.default or DEFAULT_PROFILE,
        latency_scale=scale,
    )


def apply_patch(config: SimulatorConfig, patch: dict[str, Any]) -> SimulatorConfig:
    """A new config with `patch` applied. `model_overrides` merges per model (a model mapped
    to null drops its override; `"model_overrides": null` drops all); `prices` merges too."""
    http.check_fields(SimulatorConfig, patch, "config")
    changes = dict(patch)
    if "model_overrides" in patch:
        merged = dict(config.model_overrides) if patch["model_overrides"] is not None else {}
        for model, over in (patch["model_overrides"] or {}).items():
            if over is None:
                merged.pop(model, None)
                continue
            base = dataclasses.asdict(merged[model]) if model in merged else {}
            merged[model] = FaultOverrides(**{**base, **over})
        changes["model_overrides"] = merged
    if "prices" in patch:
        changes["prices"] = {**config.prices, **{m: _price(p) for m, p in patch["prices"].items()}}
    if "default_price" in patch:
        changes["default_price"] = _price(patch["default_price"])
    if "models" in patch:
        changes["models"] = tuple(str(m) for m in patch["models"])
    if "profiles" in patch:
        changes["profiles"] = parse_profiles(patch["profiles"])
    if "default_profile" in patch:
        changes["default_profile"] = parse_profile(patch["default_profile"])
    if "label_files" in patch:
        changes["label_files"] = tuple(str(f) for f in patch["label_files"])
    return dataclasses.replace(config, **changes)


def _price(value: Any) -> tuple[float, float]:
    pin, pout = value
    return float(pin), float(pout)


def _label_source(config: SimulatorConfig) -> tuple[tuple[str, ...], bool]:
    return config.label_files, config.seed_labels


class _State:
    def __init__(self, config: SimulatorConfig, labels: dict[str, Label] | None = None) -> None:
        self.prefix = os.urandom(4).hex()
        self.ids = itertools.count(1)
        self.seen: dict[str, None] = {}
        self.labels = load_labels(*_label_source(config)) if labels is None else labels
        self.config = config
        self.set_config(config, reseed=True)
        self.reset()

    def set_config(self, config: SimulatorConfig, reseed: bool) -> None:
        """Use `config`; reloads the labels when their source changed (ValueError if bad)."""
        if _label_source(config) != _label_source(self.config):
            self.labels = load_labels(*_label_source(config))
        self.config = config
        self.cache: dict[str, _Faults] = {}
        self.profiles: dict[str, ModelProfile] = {}
        if reseed:
            self.rng = random.Random(config.seed)

    def reset(self) -> None:
        self.requests = 0
        self.by_model: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.variants: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.usage: dict[str, dict[str, float]] = {}
        self.labelled: dict[str, Counter[str]] = {}
        if self.config.seed is not None:
            self.rng = random.Random(self.config.seed)

    def faults_for(self, model: str) -> _Faults:
        faults = self.cache.get(model)
        if faults is None:
            faults = self.cache[model] = self.config.faults_for(model)
        return faults

    def profile_for(self, model: str) -> ModelProfile:
        profile = self.profiles.get(model)
        if profile is None:
            profile = self.profiles[model] = self.config.profile_for(model)
        return profile

    def count(self, model: str, prompt: int, completion: int, cost: float) -> None:
        usage = self.usage.setdefault(
            model, {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0}
        )
        usage["prompt_tokens"] += prompt
        usage["completion_tokens"] += completion
        usage["cost_usd"] += cost


STATE = web.AppKey("simulator_state", _State)


def _text(content: Any) -> str | None:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        return " ".join(
            p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return None


def _parse(body: Any) -> tuple[str, str, int] | str:
    """(model, last user message, characters of all messages), or an error message."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    if body.get("stream") is True:
        return "streaming not supported by simulator"
    model, messages = body.get("model"), body.get("messages")
    if not isinstance(model, str) or not model:
        return "'model' must be a non-empty string"
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty array"
    user, chars = "", 0
    for msg in messages:
        text = _text(msg.get("content")) if isinstance(msg, dict) else None
        if text is None or not isinstance(msg.get("role"), str):
            return "each message needs a string 'role' and a string or array 'content'"
        chars += len(text)
        if msg["role"] == "user":
            user = text
    return model, user, chars


async def _chat(request: web.Request) -> web.Response:
    st = request.app[STATE]
    st.requests += 1
    if (denied := http.unauthorized(request, st.config.require_key)) is not None:
        st.rejected["unauthorized"] += 1
        return denied
    try:
        parsed = _parse(orjson.loads(await request.read()))
    except orjson.JSONDecodeError:
        parsed = "request body is not valid JSON"
    if isinstance(parsed, str):
        st.rejected["bad_request"] += 1
        return http.error_response(400, parsed, "invalid_request_error", "invalid_request")
    model, user, chars = parsed
    st.by_model[model] += 1
    st.seen[model] = None
    faults, rng = st.faults_for(model), st.rng
    kind = faults.draw(rng)
    headers: dict[str, str] | None = None
    if kind is not None:
        st.faults[kind] += 1
        headers = {"x-simulator-fault": kind}
    if kind == "rate_limit":  # real rate limits answer at once
        msg = "Rate limit exceeded (simulated)"
        limit = {"Retry-After": "1", "x-simulator-fault": kind}
        return http.error_response(
            429, msg, "rate_limit_error", "rate_limit_exceeded", headers=limit
        )
    delay = faults.hang_s if kind == "timeout" else faults.delay(rng)
    if delay > 0:
        await asyncio.sleep(delay)
    if kind == "error":
        msg = "Internal server error (simulated)"
        return http.error_response(500, msg, "server_error", "internal_error", headers=headers)
    answer, right = profile_answer(st.profile_for(model), model, user, st.labels)
    if right is not None:
        st.labelled.setdefault(model, Counter())["correct" if right else "wrong"] += 1
    if kind == "invalid":
        variant = rng.choice(INVALID_VARIANTS)
        st.variants[variant] += 1
        content = broken_content(answer, variant, rng)
        headers = {"x-simulator-fault": f"invalid:{variant}"}
    else:
        content = orjson.dumps(answer).decode()
    prompt_tokens, completion_tokens = max(1, (chars + 3) // 4), max(1, (len(content) + 3) // 4)
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    pin, pout = st.config.price_for(model)
    cost = (prompt_tokens * pin + completion_tokens * pout) / 1e6
    st.count(model, prompt_tokens, completion_tokens, cost)
    if st.config.report_cost:
        usage["cost"] = cost
    message = {"role": "assistant", "content": content}
    return http.json_response(
        {
            "id": f"chatcmpl-{st.prefix}{next(st.ids):012x}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": usage,
        },
        headers=headers,
    )


async def _models(request: web.Request) -> web.Response:
    st = request.app[STATE]
    cfg = st.config
    ids = dict.fromkeys([*cfg.models, *cfg.model_overrides, *cfg.prices, *st.seen])
    data = [{"id": m, "object": "model", "created": 0, "owned_by": "simulator"} for m in ids]
    return http.json_response({"object": "list", "data": data})


async def _healthz(request: web.Request) -> web.Response:
    return http.json_response({"status": "ok"})


async def _stats(request: web.Request) -> web.Response:
    st = request.app[STATE]
    return http.json_response(
        {
            "requests": st.requests,
            "by_model": st.by_model,
            "faults": st.faults,
            "invalid_variants": st.variants,
            "rejected": st.rejected,
            "usage": st.usage,
            "labelled": st.labelled,
            "profiles": {m: st.profile_for(m).name for m in st.by_model},
        }
    )


async def _control(request: web.Request) -> web.Response:
    st = request.app[STATE]

    def apply(patch: dict[str, Any]) -> SimulatorConfig:
        config = apply_patch(st.config, patch)
        st.set_config(config, reseed="seed" in patch)  # changes nothing when it raises
        return config

    return await http.control_call(request, apply)


async def _reset(request: web.Request) -> web.Response:
    request.app[STATE].reset()
    return http.json_response({"status": "ok"})


def create_simulator_app(
    config: SimulatorConfig, labels: dict[str, Label] | None = None
) -> web.Application:
    """The simulator app; `labels` (from `load_labels`) saves reading the label files again."""
    app = web.Application()
    app[STATE] = _State(config, labels)
    app.router.add_post("/v1/chat/completions", _chat)
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/_stats", _stats)
    app.router.add_post("/_control", _control)
    app.router.add_post("/_reset", _reset)
    # The fine-tuning API (files, jobs, events): see devtools.simulator.finetune.
    add_finetune_routes(app, require_key=lambda: app[STATE].config.require_key)
    return app


@dataclass
class RunningSimulator:
    """A simulator started by `start_simulator`; `await close()` when done."""

    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as `base_url`."""
        return f"{self.url}/v1"

    async def close(self) -> None:
        await self.runner.cleanup()


async def start_simulator(
    config: SimulatorConfig,
    host: str = "127.0.0.1",
    port: int = 0,
    labels: dict[str, Label] | None = None,
) -> RunningSimulator:
    """Start serving in the running loop; port 0 picks a free port (see `.port`)."""
    app = create_simulator_app(config, labels)
    # No access log (CPU); cancel handlers of clients that went away, so hangs end with them.
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, backlog=1024).start()
    except BaseException:
        await runner.cleanup()
        raise
    return RunningSimulator(runner, host, int(runner.addresses[0][1]))


async def serve_simulator(
    host: str, port: int, config: SimulatorConfig, labels: dict[str, Label] | None = None
) -> None:
    """Serve until cancelled."""
    sim = await start_simulator(config, host, port, labels)
    log.info("upstream simulator listening on %s", sim.url)
    try:
        await asyncio.Event().wait()
    finally:
        await sim.close()


def run_simulator(
    host: str, port: int, config: SimulatorConfig, labels: dict[str, Label] | None = None
) -> None:
    """Blocking entry point (uvloop when installed); returns on Ctrl-C. OSError when it
    cannot listen (e.g. the port is in use)."""
    coro = serve_simulator(host, port, config, labels)
    with contextlib.suppress(KeyboardInterrupt):
        try:
            import uvloop
        except ImportError:
            asyncio.run(coro)
        else:
            uvloop.run(coro)
