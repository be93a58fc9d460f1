"""Every Redis key the gateway uses, in one place, prefixed and versioned, so an operator can
find everything it stores. Other modules build key names only through these functions.

Cluster layout. On Redis Cluster (`GATEWAY_REDIS_CLUSTER=true`) the keys one script or one
transaction touches must share a hash slot, so `configure(cluster=True)` switches to names with
hash tags (`{...}`): the keys of one pair-stream shard share the tag of the shard (`{0}`,
`{1}`, ...), corrections, the corrected set and the review queue share `{c}`, and the keys of
one experiment (weights, history, runtime variants) share the experiment's name. On a single
Redis with one pair shard (the default) the names stay the untagged ones, so existing data
stays readable. `configure` is called once per process by `gateway.infra.redis_client`, before
the first connection.
"""

from __future__ import annotations

import zlib

PREFIX = "triage"
SCHEMA = "v1"

_layout: dict[str, int] = {"cluster": 0, "pair_shards": 1}
_archive: dict[str, str | None] = {"url": None}


def configure(*, cluster: bool, pair_shards: int = 1, archive_url: str | None = None) -> None:
    """Choose the key layout: hash-tagged names on a cluster, `pair_shards` pair streams;
    with an archive (`GATEWAY_ARCHIVE_URL`), corrections also go to `corrections_outbox()`."""
    if pair_shards < 1:
        raise ValueError("pair_shards must be at least 1")
    _layout.update(cluster=int(cluster), pair_shards=pair_shards)
    _archive["url"] = archive_url


def archive_url() -> str | None:
    """The archive's directory or fsspec URL (None: no archive)."""
    return _archive["url"]


def corrections_outbox() -> str:
    """Stream of corrections not yet written to the archive (same slot as the corrections;
    emptied by `gateway.pairs.archive.flush_corrections`). Used only with an archive."""
    return f"{_c()}:corrections-outbox"


def archive_lock() -> str:
    """Marker (SET NX PX) held by the one process flushing the corrections outbox."""
    return f"{_c()}:archive-lock"


def cluster_layout() -> bool:
    """Whether key names carry hash tags (Redis Cluster)."""
    return bool(_layout["cluster"])


def pair_shards() -> int:
    """How many streams the pair log is sharded over."""
    return _layout["pair_shards"]


def _sharded() -> bool:
    return bool(_layout["cluster"]) or _layout["pair_shards"] > 1


def pair_shard(request_id: str) -> int:
    """The shard of a request id: a stable hash (CRC-32) modulo the shard count."""
    return zlib.crc32(request_id.encode()) % _layout["pair_shards"]


def shard_stream(configured: str, shard: int) -> str:
    """Stream of shard `shard` (the configured name itself when the log is not sharded)."""
    return f"{configured}:{{{shard}}}" if _sharded() else configured


def shard_pair_index(shard: int) -> str:
    """`pair_index()` of one shard (same slot as its stream)."""
    return f"{PREFIX}:{SCHEMA}:pair-index:{{{shard}}}" if _sharded() else pair_index()


def shard_review_pairs(shard: int, review_id: str) -> str:
    """`review_pairs(review_id)` of one shard (same slot as its stream)."""
    if not _sharded():
        return review_pairs(review_id)
    return f"{PREFIX}:{SCHEMA}:review:{{{shard}}}:{review_id}:pairs"


def _c() -> str:
    """Corrections group: one slot for corrections, the corrected set and the review queue."""
    return f"{PREFIX}:{SCHEMA}:{{c}}" if _layout["cluster"] else f"{PREFIX}:{SCHEMA}"


def _exp(experiment: str) -> str:
    return f"{{{experiment}}}" if _layout["cluster"] else experiment


def pairs_stream(configured: str = "triage:pairs") -> str:
    """Stream of (review, answer) pair records (XADD; MINID trimming for retention)."""
    return configured


def pair_index() -> str:
    """Hash request_id -> stream entry id, for lookups and erasure."""
    return f"{PREFIX}:{SCHEMA}:pair-index"


def review_pairs(review_id: str) -> str:
    """Set of request_ids logged for one review_id (erasure requests)."""
    return f"{PREFIX}:{SCHEMA}:review:{review_id}:pairs"


def corrections(request_id: str) -> str:
    """List of corrections of one pair, oldest first (the last one wins for export)."""
    return f"{_c()}:corrections:{request_id}"


def corrected_set() -> str:
    """Sorted set of corrected request_ids, scored by the time of the last correction."""
    return f"{_c()}:corrected"


def review_queue() -> str:
    """Sorted set of uncorrected request_ids by review priority (lower = sooner)."""
    return f"{_c()}:review-queue"


def weights(experiment: str) -> str:
    """Hash with the live weights of an experiment, plus its version."""
    return f"{PREFIX}:{SCHEMA}:weights:{_exp(experiment)}"


def weights_history(experiment: str) -> str:
    """Stream of weight changes (who, when, why, old, new) for audit and rollback."""
    return f"{PREFIX}:{SCHEMA}:weights-history:{_exp(experiment)}"


def runtime_variants(experiment: str) -> str:
    """Hash of variants added at run time (from the model registry), name -> JSON."""
    return f"{PREFIX}:{SCHEMA}:variants:{_exp(experiment)}"


def model_registry() -> str:
    """Hash of registered models, name -> JSON record."""
    return f"{PREFIX}:{SCHEMA}:models"


def review_queue_refreshed() -> str:
    """Marker (SET NX PX) that throttles rebuilding the review queue to once per interval."""
    return f"{PREFIX}:{SCHEMA}:review-queue:refreshed"


def review_session_secret() -> str:
    """Random secret that signs review-page sessions, shared by all workers (SET NX)."""
    return f"{PREFIX}:{SCHEMA}:review:session-secret"


def review_session(sid: str) -> str:
    """A live review-page session (value: the reviewer fingerprint; TTL = session lifetime).
    Deleted at logout, which ends the session on every worker."""
    return f"{PREFIX}:{SCHEMA}:review:session:{sid}"


def review_login_failures(client: str) -> str:
    """Count of wrong reviewer keys from one client address in the current window (INCR,
    EXPIRE): sign-in is refused with 429 once it reaches the limit."""
    return f"{PREFIX}:{SCHEMA}:review:login-failures:{client}"


def served_routes() -> str:
    """Hash with the routes file the gateway serves (path, sha256, the YAML itself, pid, ts),
    written at each start, so CLI commands use the same routes without GATEWAY_ROUTES."""
    return f"{PREFIX}:{SCHEMA}:served-routes"
