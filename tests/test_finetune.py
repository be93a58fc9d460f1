"""Hosted fine-tuning end to end against the simulator: `finetune` -> registry -> `models deploy`
-> a running gateway routes to the new model without a restart. Plus failing jobs, the registry
CLI and the admin variants endpoint."""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis

from gateway.experiments.model_registry import ModelRecord
from gateway.infra import redis_keys
from tests.servers import (
    TRAINING_REVIEWS,
    Gateway,
    Simulator,
    ab_routes,
    chat_example,
    clean_env,
    put_experiment,
    run_gateway,
    run_module,
    write_routes,
)

SECRET = "sk-test-finetune-secret-7c1e"
ADMIN = {"Authorization": "Bearer k"}


def chat_line(review: tuple[str, str, str, str]) -> bytes:
    return orjson.dumps(chat_example(*review)) + b"\n"


def write_data(tmp: Path) -> tuple[Path, Path]:
    train, val = tmp / "train.jsonl", tmp / "val.jsonl"
    train.write_bytes(b"".join(map(chat_line, TRAINING_REVIEWS)))
    val.write_bytes(b"".join(map(chat_line, TRAINING_REVIEWS[:2])))
    return train, val


def cli(
    tmp: Path, *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    full_env = clean_env(
        "OPENAI_API_KEY",
        "TOGETHER_API_KEY",
        GATEWAY_DATA_DIR=str(tmp / "cli-data"),
        COLUMNS="200",
        **env,
    )
    return run_module("cli", *args, env=full_env, timeout=timeout)


def cli_routes(tmp: Path, sim: Simulator, redis_url: str) -> tuple[Path, dict[str, str]]:
    """The A/B routes on `sim`, and the CLI's environment for them and this Redis."""
    routes = write_routes(tmp / "routes.yaml", ab_routes(sim.base_url))
    return routes, {"GATEWAY_REDIS_URL": redis_url, "GATEWAY_ROUTES": str(routes)}


@pytest.fixture
def ft_sim(sim: Simulator) -> Iterator[Simulator]:
    """The session simulator with fast fine-tuning jobs (about 1.4 s), faults off."""
    fast = {"validating_s": 0.2, "queued_s": 0.2, "running_s": 1.0, "steps": 5}
    httpx.post(f"{sim.url}/_finetune/control", json={**fast, "fail_message": None}, timeout=5)
    yield sim
    httpx.post(f"{sim.url}/_finetune/control", json={"fail_message": None}, timeout=5)


def registry(redis_url: str) -> dict[str, ModelRecord]:
    rows: Any = redis.Redis.from_url(redis_url).hgetall(redis_keys.model_registry())
    return {k.decode(): ModelRecord.model_validate_json(v) for k, v in rows.items()}


def routes_view(gw: Gateway) -> dict[str, dict[str, Any]]:
    body = httpx.get(f"{gw.url}/v1/routes", headers=gw.headers, timeout=5).json()
    return {v["name"]: v for v in body["experiments"][0]["variants"]}


def wait_for_variant(gw: Gateway, name: str, within_s: float = 5.0) -> dict[str, Any]:
    start = time.monotonic()
    while time.monotonic() - start < within_s:
        found = routes_view(gw).get(name)
        if found is not None:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{name} not in /v1/routes after {within_s} s: {routes_view(gw)}")


def test_finetune_register_deploy_and_route_without_restart(
    tmp: Path, ft_sim: Simulator, redis_url: str
) -> None:
    train, val = write_data(tmp)
    routes, env = cli_routes(tmp, ft_sim, redis_url)
    with run_gateway(
        tmp / "gw", routes=routes, redis_url=redis_url, env={"GATEWAY_ADMIN_KEYS": "k"}
    ) as gw:
        done = cli(
            tmp,
            "finetune",
            *("--provider", "openai", "--base", "gpt-4o-mini"),
            *("--train", str(train), "--val", str(val)),
            *("--base-url", ft_sim.base_url, "--suffix", "triage", "--name", "triage-ft-1"),
            *("--epochs", "2", "--lr", "1.5", "--price-in", "0.3", "--price-out", "1.2"),
            *("--poll-s", "0.2", "--timeout-s", "60"),
            env={**env, "OPENAI_API_KEY": SECRET},
        )
        assert done.returncode == 0, done.stderr + done.stdout
        assert SECRET not in done.stdout + done.stderr
        assert "Fine-tuning job started" in done.stdout and "succeeded" in done.stdout
        assert "registered 'triage-ft-1'" in done.stdout

        record = registry(redis_url)["triage-ft-1"]
        assert record.kind == "hosted" and record.status == "candidate"
        assert record.endpoint == ft_sim.base_url and record.provider == "openai"
        assert record.base_model == "gpt-4o-mini"
        assert record.model is not None and record.model.startswith("ft:gpt-4o-mini:triage:")
        digest = hashlib.sha256(train.read_bytes() + val.read_bytes()).hexdigest()
        assert record.training_data_hash == digest
        assert record.price is not None and record.price.output_per_1m == 1.2
        assert record.metrics["train_examples"] == 6 and record.metrics["val_examples"] == 2
        trained = record.metrics["trained_tokens"]
        assert isinstance(trained, int) and trained > 0
        assert isinstance(record.metrics["valid_loss"], float)
        job = httpx.get(f"{ft_sim.base_url}/fine_tuning/jobs/{record.job_id}", timeout=5).json()
        assert job["hyperparameters"]["n_epochs"] == 2
        assert job["hyperparameters"]["learning_rate_multiplier"] == 1.5

        deployed = cli(
            tmp,
            *("models", "deploy", "triage-ft-1", "--experiment", "triage"),
            *("--as-variant", "cand2"),
            env=env,
        )
        assert deployed.returncode == 0, deployed.stderr
        cand2 = wait_for_variant(gw, "cand2")
        assert cand2["weight"] == 0 and cand2["model"] == f"openai/{record.model}"
        assert not cand2["shadow"]

        # The admin API adds another one, as the experiment's shadow.
        admin = partial(put_experiment, gw.url, ADMIN)
        added = admin("variants", name="cand3", registry_name="triage-ft-1", shadow_sample_rate=1.0)
        assert added.status_code == 200, added.text
        assert routes_view(gw)["cand3"]["shadow"] is True
        assert registry(redis_url)["triage-ft-1"].status == "shadow"
        listed = httpx.get(
            f"{gw.url}/admin/experiments/triage/variants", headers=ADMIN, timeout=5
        ).json()
        assert {v["variant"]["name"] for v in listed["variants"]} == {"cand2", "cand3"}

        ramp = admin("weights", weights={"cand2": 1, "control": 0, "candidate": 0}, reason="try ft")
        assert ramp.status_code == 200, ramp.text
        httpx.post(f"{ft_sim.url}/_reset", timeout=5)
        with gw.client() as client:
            for i in range(5):
                r = client.post("/v1/classify", json={"text": "it crashes", "review_id": f"r{i}"})
                assert r.status_code == 200, r.text
                assert r.json()["variant"] == "cand2"
                assert r.json()["model"] == f"openai/{record.model}"
        deadline = time.monotonic() + 5
        while ft_sim.stats()["by_model"].get(record.model, 0) < 10 and time.monotonic() < deadline:
            time.sleep(0.1)  # 5 served + 5 shadow calls (cand3, sample rate 1)
        assert ft_sim.stats()["by_model"][record.model] == 10

        clash = admin("variants", name="control", model="openai/gpt-4o", api_base=ft_sim.base_url)
        assert clash.status_code == 422 and "routes file" in clash.json()["detail"]
        denied = put_experiment(gw.url, gw.headers, "variants", name="x", model="openai/gpt-4o")
        assert denied.status_code == 401
        assert SECRET not in gw.log_text()


def test_restarted_gateway_loads_runtime_variants_and_their_weights(
    tmp: Path, sim: Simulator, redis_url: str
) -> None:
    routes = write_routes(tmp / "routes.yaml", ab_routes(sim.base_url))
    env = {"GATEWAY_ADMIN_KEYS": "k"}
    with run_gateway(tmp / "a", routes=routes, redis_url=redis_url, env=env) as a:
        admin = partial(put_experiment, a.url, ADMIN)
        added = admin("variants", name="plain", model="openai/gpt-4o-mini", api_base=sim.base_url)
        assert added.status_code == 200, added.text
        # A runtime variant may not send a provider key to a host the routes file does not.
        leak = admin(
            "variants", name="leak", model="openrouter/x", api_base="http://127.0.0.1:9/v1"
        )
        assert leak.status_code == 422 and "'openrouter' is only sent to" in leak.text
        same_host = admin("variants", name="or2", model="openrouter/acme/x", api_base=sim.base_url)
        assert same_host.status_code == 200, same_host.text
        ramp = admin("weights", weights={"plain": 0.5}, reason="half")
        assert ramp.status_code == 200, ramp.text
    # Entries a replica cannot take are left out, one by one; the rest still load.
    r = redis.Redis.from_url(redis_url)
    clash = {"variant": {"name": "control", "model": "openai/x"}, "ts": 1}
    r.hset(redis_keys.runtime_variants("triage"), "control", orjson.dumps(clash))
    r.hset(redis_keys.runtime_variants("triage"), "broken", b"{not json")
    creds = {"variant": {"name": "creds", "model": "openai/x", "api_base": "https://u:s3cr3t@h/v1"}}
    r.hset(redis_keys.runtime_variants("triage"), "creds", orjson.dumps(creds))
    r.hincrby(redis_keys.weights("triage"), "variants_version", 1)
    with run_gateway(tmp / "b", routes=routes, redis_url=redis_url, env=env) as b:
        view = routes_view(b)
        assert view["plain"]["weight"] == 0.5 and view["plain"]["model"] == "openai/gpt-4o-mini"
        assert view["or2"]["weight"] == 0 and "leak" not in view and "broken" not in view
        assert view["control"]["model"] == "openrouter/openai/gpt-4o"
        log = b.log_text()
        assert "ignoring stored variant" in log and "broken" in log
        assert "creds" not in view and "must not hold credentials" in log  # stored before the
        assert "s3cr3t" not in log  # api_base check: skipped, and its password never logged


def test_together_provider_through_the_openai_compatible_api(
    tmp: Path, ft_sim: Simulator, redis_url: str
) -> None:
    train, _ = write_data(tmp)
    done = cli(
        tmp,
        *("finetune", "--provider", "together", "--base", "meta-llama/Llama-3.2-1B-Instruct"),
        *("--train", str(train), "--base-url", ft_sim.base_url, "--lora-rank", "8"),
        *("--poll-s", "0.2", "--name", "together-ft"),
        env={"GATEWAY_REDIS_URL": redis_url, "TOGETHER_API_KEY": SECRET},
    )
    assert done.returncode == 0, done.stderr + done.stdout
    record = registry(redis_url)["together-ft"]
    assert record.provider == "together" and str(record.base_model).startswith("meta-llama/")
    job = httpx.get(f"{ft_sim.base_url}/fine_tuning/jobs/{record.job_id}", timeout=5).json()
    assert job["lora"] is True and job["lora_r"] == 8
    assert record.training_data_hash == hashlib.sha256(train.read_bytes()).hexdigest()


def test_failing_jobs_exit_nonzero_with_the_providers_message(
    tmp: Path, ft_sim: Simulator, redis_url: str
) -> None:
    train, val = write_data(tmp)
    bad = tmp / "bad.jsonl"
    bad.write_bytes(
        chat_line(TRAINING_REVIEWS[0]) + chat_line(TRAINING_REVIEWS[1]) + b"{not json\n"
    )
    env = {"GATEWAY_REDIS_URL": redis_url, "OPENAI_API_KEY": SECRET}
    common = ("finetune", "--provider", "openai", "--base", "gpt-4o-mini")
    fast = ("--base-url", ft_sim.base_url, "--poll-s", "0.2")
    jobs_before = len(httpx.get(f"{ft_sim.base_url}/fine_tuning/jobs", timeout=5).json()["data"])

    checked = cli(tmp, *common, "--train", str(bad), *fast, env=env)
    assert checked.returncode == 2
    assert f"{bad}:3: not valid JSON" in checked.stderr
    jobs_after = len(httpx.get(f"{ft_sim.base_url}/fine_tuning/jobs", timeout=5).json()["data"])
    assert jobs_after == jobs_before, "nothing is uploaded when the local check fails"

    failed = cli(tmp, *common, "--train", str(bad), "--no-validate", *fast, env=env)
    assert failed.returncode == 1, failed.stderr
    assert "failed: Training file" in failed.stderr
    assert "line 3 is not valid JSON" in failed.stderr
    assert "[invalid_training_file]" in failed.stderr

    httpx.post(
        f"{ft_sim.url}/_finetune/control", json={"fail_message": "quota exceeded (sim)"}, timeout=5
    )
    quota = cli(tmp, *common, "--train", str(train), "--val", str(val), *fast, env=env)
    assert quota.returncode == 1 and "quota exceeded (sim)" in quota.stderr
    assert registry(redis_url) == {}

    no_key = cli(tmp, *common, "--train", str(train), *fast, env={"GATEWAY_REDIS_URL": redis_url})
    assert no_key.returncode == 2 and "OPENAI_API_KEY" in no_key.stderr
    lora_openai = cli(tmp, *common, "--train", str(train), "--lora-rank", "8", *fast, env=env)
    assert lora_openai.returncode == 2 and "--lora-rank" in lora_openai.stderr
    for out in (checked, failed, quota, no_key, lora_openai):
        assert SECRET not in out.stdout + out.stderr


def test_registry_cli_add_list_show_retire_and_deploy_checks(
    tmp: Path, sim: Simulator, redis_url: str
) -> None:
    train, _ = write_data(tmp)
    _, env = cli_routes(tmp, sim, redis_url)
    add = (
        *("models", "add", "vllm-triage", "--kind", "self-hosted"),
        *("--endpoint", "http://127.0.0.1:8000/v1", "--model", "triage", "--provider", "vllm"),
        *("--base-model", "meta-llama/Llama-3.2-1B-Instruct", "--data", str(train)),
        *("--price-in", "0", "--price-out", "0", "--metric", "eval_loss=0.42"),
    )
    assert cli(tmp, *add, env=env).returncode == 0
    again = cli(tmp, *add, env=env)
    assert again.returncode == 2 and "already registered" in again.stderr
    bad_kind = cli(tmp, "models", "add", "x", "--kind", "local", env=env)
    assert bad_kind.returncode == 2 and "path" in bad_kind.stderr

    listed = cli(tmp, "models", "list", env=env)
    assert listed.returncode == 0 and "vllm-triage" in listed.stdout
    assert "self-hosted" in listed.stdout and "candidate" in listed.stdout
    shown = cli(tmp, "models", "show", "vllm-triage", env=env)
    assert shown.returncode == 0
    assert "eval_loss=0.42" in shown.stdout
    assert hashlib.sha256(train.read_bytes()).hexdigest() in shown.stdout
    missing = cli(tmp, "models", "show", "nope", env=env)
    assert missing.returncode == 2 and "no registered model 'nope'" in missing.stderr

    deploy = ("models", "deploy", "vllm-triage", "--as-variant")
    clash = cli(tmp, *deploy, "control", "--experiment", "triage", env=env)
    assert clash.returncode == 2 and "routes file" in clash.stderr
    unknown = cli(tmp, *deploy, "v2", "--experiment", "nope", env=env)
    assert unknown.returncode == 2 and "unknown experiment" in unknown.stderr
    shadow = cli(tmp, *deploy, "v2", "--experiment", "triage", "--shadow", "0.2", env=env)
    assert shadow.returncode == 0, shadow.stderr
    stored = redis.Redis.from_url(redis_url).hget(redis_keys.runtime_variants("triage"), "v2")
    assert stored is not None and orjson.loads(stored)["shadow_sample_rate"] == 0.2
    assert registry(redis_url)["vllm-triage"].status == "shadow"

    assert cli(tmp, "models", "retire", "vllm-triage", env=env).returncode == 0
    assert registry(redis_url)["vllm-triage"].status == "retired"
    retired = cli(tmp, *deploy, "v3", "--experiment", "triage", env=env)
    assert retired.returncode == 2 and "retired" in retired.stderr
    assert "retired" in cli(tmp, "models", "list", env=env).stdout


def test_simulator_jobs_follow_the_clock_and_cancel(ft_sim: Simulator) -> None:
    from openai import BadRequestError, OpenAI

    client = OpenAI(api_key="x", base_url=ft_sim.base_url, max_retries=0)
    httpx.post(f"{ft_sim.url}/_finetune/control", json={"running_s": 30}, timeout=5)
    try:
        uploaded = client.files.create(
            file=("t.jsonl", chat_line(TRAINING_REVIEWS[0])), purpose="fine-tune"
        )
        assert client.files.retrieve(uploaded.id).bytes == len(chat_line(TRAINING_REVIEWS[0]))
        job = client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=uploaded.id)
        assert job.status == "validating_files"
        deadline = time.monotonic() + 5
        while client.fine_tuning.jobs.retrieve(job.id).status != "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        cancelled = client.fine_tuning.jobs.cancel(job.id)
        assert cancelled.status == "cancelled" and cancelled.fine_tuned_model is None
        events = client.fine_tuning.jobs.list_events(job.id).data
        assert events[0].message == "Fine-tuning job cancelled"
        with pytest.raises(BadRequestError):
            client.fine_tuning.jobs.cancel(job.id)
        with pytest.raises(BadRequestError, match="invalid training_file"):
            client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file="file-nope")
    finally:
        httpx.post(f"{ft_sim.url}/_finetune/control", json={"running_s": 1.0}, timeout=5)
        client.close()
