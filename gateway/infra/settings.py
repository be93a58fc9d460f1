"""All configuration, from the environment with the `GATEWAY_` prefix (or a `.env` file); the
fine-tuning API keys keep their providers' own names.

Built once per process and passed down: by the CLI for each command (`cli.app.get_settings`;
`serve --workers N` hands its `Settings` to each worker, pickled), by
`gateway.api.asgi.app_factory` under `uvicorn --factory`, or by a test. Besides this class,
the code reads two variables itself: PROMETHEUS_MULTIPROC_DIR (prometheus_client's
multiprocess directory, `gateway.infra.metrics`) and TRIAGE_LOCAL_THREADS (ONNX runtime
threads, `gateway.local.onnx`). Secrets are `SecretStr` and have no defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

KeyList = Annotated[list[SecretStr], NoDecode]
HostList = Annotated[list[str], NoDecode]


def default_data_dir() -> Path:
    """`$XDG_DATA_HOME/triage-gateway`, else `~/.local/share/triage-gateway`: the same folder
    whatever the current directory, so every command finds the gateway's embedded Redis."""
    xdg = os.environ.get("XDG_DATA_HOME", "").strip()
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "triage-gateway"


def _split_keys(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    routes: Path | None = None
    """Routes file (YAML); the packaged default (one in-process local variant) when unset."""
    data_dir: Path = Field(default_factory=default_data_dir)
    """Embedded Redis, the pair spool and cached models live here (`default_data_dir`); a
    relative GATEWAY_DATA_DIR is made absolute against the current directory once, here."""
    redis_url: SecretStr | None = None
    """redis:// or unix:// URL; when unset an embedded Redis is started under data_dir."""

    api_keys: KeyList = Field(default_factory=list)
    """Bearer keys of calling services (comma-separated). None: loopback only."""
    reviewer_keys: KeyList = Field(default_factory=list)
    admin_keys: KeyList = Field(default_factory=list)
    provider_keys: dict[str, SecretStr] = Field(default_factory=dict)
    """Upstream keys by name, JSON: {"openrouter": "sk-or-...", "together": "..."}."""
    openrouter_api_key: SecretStr | None = None
    """Shorthand for provider_keys["openrouter"]."""
    openai_api_key: SecretStr | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    together_api_key: SecretStr | None = Field(default=None, validation_alias="TOGETHER_API_KEY")
    """Keys of the fine-tuning APIs (`triage-gateway finetune`), under the providers' own
    variable names (no GATEWAY_ prefix)."""

    allowed_hosts: HostList = Field(default_factory=list)
    """Keyless mode only: Host names accepted besides loopback ones (comma-separated)."""
    trusted_proxies: HostList = Field(default_factory=list)
    """Addresses or networks (comma-separated, `*` for any) of proxies whose X-Forwarded-Proto
    and X-Forwarded-For are believed (TLS seen by the proxy -> Secure review cookie). None by
    default."""
    public_docs: bool = False
    """Serve /openapi.json, /docs and /redoc without an API key."""

    max_body_bytes: Annotated[int, Field(ge=1024)] = 64 * 1024
    body_timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    """A request body must arrive whole within this many seconds of the request (else 408)."""
    metrics_auth: bool = False
    """Require an API key on /metrics (off by default: Prometheus scrapes loopback/cluster)."""
    access_log: bool = True
    log_level: str = "info"

    pairs_stream: str = "triage:pairs"
    pair_queue_size: Annotated[int, Field(ge=1)] = 10_000
    pair_batch_size: Annotated[int, Field(ge=1, le=10_000)] = 256
    pair_retention_days: Annotated[float, Field(ge=0)] = 0.0
    """Trim pairs older than this many days (0 keeps everything)."""
    redis_cluster: bool = False
    """GATEWAY_REDIS_URL names any node of a Redis Cluster (hash-tagged key layout)."""
    pair_shards: Annotated[int, Field(ge=1, le=1024)] = 1
    """Pair streams, by a hash of the request id (fixed for the life of the stored data)."""
    pair_hot_hours: Annotated[float, Field(ge=0)] = 0.0
    """Pairs older than this move to the archive (`triage-gateway archive`; 0: never)."""
    archive_url: str | None = None
    """Directory or fsspec URL (s3://, gs://) of the Parquet archive of pairs and corrections."""
    archive_every_s: Annotated[float, Field(ge=0)] = 0.0
    """The gateway archives pairs this often (0: only on demand or from a CronJob)."""
    redact: bool = True
    """Mask emails, phone numbers and URLs with tokens before pairs are stored."""
    weights_poll_s: Annotated[float, Field(gt=0, le=60)] = 1.0

    @field_validator(
        "api_keys", "reviewer_keys", "admin_keys", "allowed_hosts", "trusted_proxies", mode="before"
    )
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _split_keys(value)

    @field_validator("data_dir", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    def provider_key_values(self) -> dict[str, str]:
        """Provider name -> key, without surrounding whitespace: a key read from a file (a
        Kubernetes secret made with --from-file) often ends in a newline, which no HTTP
        client accepts in a header."""
        keys = {name: secret.get_secret_value() for name, secret in self.provider_keys.items()}
        if self.openrouter_api_key is not None:
            keys.setdefault("openrouter", self.openrouter_api_key.get_secret_value())
        return {name: key.strip() for name, key in keys.items()}

    def is_loopback(self) -> bool:
        from gateway.infra.security import is_loopback_host

        return is_loopback_host(self.host)
