"""Mask personal data in review texts before they are stored: emails, phone numbers and URLs
that carry tokens (query strings, long random-looking path segments).

Linear time in the length of the text, whatever it holds: review texts come from anyone, so no
pattern here may backtrack over a run of the input more than a constant number of times. The
rules that keep it so:

- every repeat that could be retried from many positions is possessive (`++`, `{m,n}+`) or
  anchored by a look-behind to the start of its run, so each character is scanned a bounded
  number of times;
- the "token in a URL path" test is not a regular expression with look-aheads (which rescan
  the rest of the path from every separator: quadratic) but one pass over the path's word
  runs (`_has_token`).

Redaction runs in the pair writer (`gateway.pairs.pairlog`), in a worker thread, never on the
request path. Inputs are bounded: review texts at 8,000 characters by the API schema, model
output by the upstream client's response limit, and `MAX_CHARS` here caps anything else.
`tools/bench/pairlog.py` measures the cost on a typical review.
"""

from __future__ import annotations

import re

EMAIL = "[email]"
PHONE = "[phone]"
URL = "[url]"
TRUNCATED = "[truncated]"

MAX_CHARS = 64_000
"""Longer texts are cut to this length (ending in `TRUNCATED`) before redaction, so the cost
and the stored copy are bounded whatever the caller passes."""

# An email is found from its "@": the domain is matched forward from there (possessive
# repeats, which never give characters back) and the local part walked back to the end of the
# previous match, so each character is looked at a bounded number of times.
_DOMAIN = re.compile(r"[\w-]++(?:\.[\w-]++)+")
_LOCAL_PUNCT = frozenset("_.+-")
_URL = re.compile(r"[hw](?:ttps?://|ww\.)[^\s<>\"'\[\]{}|\\^`]++", re.IGNORECASE)
_URL_TAIL = ".,;:!?)"

# A path segment that looks like a secret: long hex, or 16+ word characters mixing letters
# and digits (session ids, reset tokens, pieces of JWTs). A token is a run of `[\w-]` that
# starts at the path's start, after one of `/=.~`, or after a `-` or `_` inside the run, and
# ends the run, followed by the path's end or one of `/?#&.`.
_WORD_RUN = re.compile(r"[\w-]++")
_TOKEN_BEFORE = frozenset("/=.~")
_TOKEN_AFTER = frozenset("/?#&.")
_HEX = frozenset("0123456789abcdefABCDEF")
_DIGIT = re.compile(r"\d")
_LETTER = re.compile(r"[A-Za-z]")
TOKEN_MIN = 16

# Digit runs long enough to hold a phone number; only these spans get the precise pattern.
_PHONE_CANDIDATE = re.compile(r"\d[\d .()-]{8,}\d")
# International: +<country code> then digit groups. US: optional 1, area code (2-9xx, with or
# without parentheses), exchange and line, with or without separators. 10-15 digits in all
# (counted after the match). Inside each international group the repeats are possessive: a
# long digit run after a "+" is split once, not in every possible way (exponential), and only
# the number of groups is retried (at most five times).
_PHONE = re.compile(
    r"(?<![\w+])\+\d{1,3}+(?:[ .-]?+\(?+\d{1,5}+\)?+){2,6}(?!\w)"
    r"|(?<![\w+])(?:1[ .-]?)?(?:\([2-9]\d{2}\)|[2-9]\d{2})[ .-]?\d{3}[ .-]?\d{4}(?!\w)"
)


def _has_token(path: str) -> bool:
    """Whether a segment of a URL path looks like a secret (see `_WORD_RUN` above); one pass
    over the path."""
    end_of_path = len(path)
    for run in _WORD_RUN.finditer(path):
        start, end = run.span()
        if end - start < TOKEN_MIN or (end < end_of_path and path[end] not in _TOKEN_AFTER):
            continue
        seg = run.group()
        opens = start == 0 or path[start - 1] in _TOKEN_BEFORE
        # The longest candidate: the whole run, else what follows its first "-" or "_".
        first = 0
        if not opens:
            seps = [i for i in (seg.find("-"), seg.find("_")) if i >= 0]
            if not seps:
                continue
            first = min(seps) + 1
        tail = seg[first:]
        if len(tail) >= TOKEN_MIN and _DIGIT.search(tail) and _LETTER.search(tail):
            return True
        # Hex: only after the run's last "-" or "_" (neither is a hex digit), or the whole run.
        last = max(seg.rfind("-"), seg.rfind("_"))
        hex_part = seg[last + 1 :] if last >= 0 else (seg if opens else "")
        if len(hex_part) >= TOKEN_MIN and _HEX.issuperset(hex_part):
            return True
    return False


def _url(match: re.Match[str]) -> str:
    url = match.group(0)
    cut = len(url.rstrip(_URL_TAIL))
    url, tail = url[:cut], url[cut:]
    path = url.split("://", 1)[-1].partition("/")[2]
    if "?" in url or _has_token(path):
        return URL + tail
    return url + tail


def _emails(text: str) -> str:
    parts: list[str] = []
    last = 0
    at = text.find("@")
    while at != -1:
        domain = _DOMAIN.match(text, at + 1)
        start = at
        if domain is not None:
            while start > last and (text[start - 1].isalnum() or text[start - 1] in _LOCAL_PUNCT):
                start -= 1
        if start == at or domain is None:
            at = text.find("@", at + 1)
            continue
        parts += (text[last:start], EMAIL)
        last = domain.end()
        at = text.find("@", last)
    if not parts:
        return text
    parts.append(text[last:])
    return "".join(parts)


def _phones(text: str) -> str:
    parts: list[str] = []
    last = 0
    for cand in _PHONE_CANDIDATE.finditer(text):
        # One character more on each side: a leading "+" or "(" and the word-boundary checks.
        for found in _PHONE.finditer(text, max(last, cand.start() - 1), cand.end() + 1):
            digits = sum(ch.isdigit() for ch in found.group(0))
            if 10 <= digits <= 15:
                parts += (text[last : found.start()], PHONE)
                last = found.end()
    if not parts:
        return text
    parts.append(text[last:])
    return "".join(parts)


def redact(text: str) -> str:
    """`text` with emails, phone numbers and token-carrying URLs replaced by placeholders."""
    if len(text) > MAX_CHARS:
        text = text[: MAX_CHARS - len(TRUNCATED)] + TRUNCATED
    if "://" in text or "www." in text or "WWW." in text:
        text = _URL.sub(_url, text)
    if "@" in text:
        text = _emails(text)
    return _phones(text)
