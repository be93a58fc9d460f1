"""Every Redis key the gateway uses, in one place, prefixed and versioned, so an operator can
find everything it stores. Other modules build key names only through these functions."""

from __future__ import annotations

PREFIX = "triage"
SCHEMA = "v1"


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
    return f"{PREFIX}:{SCHEMA}:corrections:{request_id}"


def corrected_set() -> str:
    """Sorted set of corrected request_ids, scored by the time of the last correction."""
    return f"{PREFIX}:{SCHEMA}:corrected"


def review_queue() -> str:
    """Sorted set of uncorrected request_ids by review priority (lower = sooner)."""
    return f"{PREFIX}:{SCHEMA}:review-queue"


def weights(experiment: str) -> str:
    """Hash with the live weights of an experiment, plus its version."""
    return f"{PREFIX}:{SCHEMA}:weights:{experiment}"


def weights_history(experiment: str) -> str:
    """Stream of weight changes (who, when, why, old, new) for audit and rollback."""
    return f"{PREFIX}:{SCHEMA}:weights-history:{experiment}"


def runtime_variants(experiment: str) -> str:
    """Hash of variants added at run time (from the model registry), name -> JSON."""
    return f"{PREFIX}:{SCHEMA}:variants:{experiment}"


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
