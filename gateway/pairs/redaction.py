"""Mask personal data in review texts before they are stored: emails, phone numbers and URLs
that carry tokens (query strings, long random-looking path segments).

Cheap by design (it runs on the request path, inside `PairLog.submit`): the patterns are
compiled once, each runs only where a plain substring test or a cheap candidate scan says it
could match, so a typical 300-character review costs a few microseconds
(`tools/bench/pairlog.py` measures it).
"""

from __future__ import annotations

import re

EMAIL = "[email]"
PHONE = "[phone]"
URL = "[url]"

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"[hw](?:ttps?://|ww\.)[^\s<>\"'\[\]{}|\\^`]+", re.IGNORECASE)
_URL_TAIL = ".,;:!?)"
# A path segment that looks like a secret: long hex, or 16+ word characters mixing letters
# and digits (session ids, reset tokens, pieces of JWTs).
_TOKEN = re.compile(
    r"(?:^|[/=._~-])(?:[0-9a-fA-F]{16,}|(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[\w-]{16,})(?:$|[/?#&.])"
)
# Digit runs long enough to hold a phone number; only these spans get the precise pattern.
_PHONE_CANDIDATE = re.compile(r"\d[\d .()-]{8,}\d")
# International: +<country code> then digit groups. US: optional 1, area code (2-9xx, with or
# without parentheses), exchange and line, with or without separators. 10-15 digits in all.
_PHONE = re.compile(
    r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,5}\)?){2,6}(?!\w)"
    r"|(?<![\w+])(?:1[ .-]?)?(?:\([2-9]\d{2}\)|[2-9]\d{2})[ .-]?\d{3}[ .-]?\d{4}(?!\w)"
)


def _url(match: re.Match[str]) -> str:
    url = match.group(0)
    cut = len(url.rstrip(_URL_TAIL))
    url, tail = url[:cut], url[cut:]
    path = url.split("://", 1)[-1].partition("/")[2]
    if "?" in url or _TOKEN.search(path):
        return URL + tail
    return url + tail


def _emails(text: str) -> str:
    parts: list[str] = []
    last = 0
    while (at := text.find("@", last)) != -1:
        # Search a window around the "@" only: scanning the whole text costs 3x more.
        found = _EMAIL.search(text, max(last, at - 64), at + 255)
        if found is None:
            parts.append(text[last : at + 1])
            last = at + 1
            continue
        parts += (text[last : found.start()], EMAIL)
        last = found.end()
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
    if "://" in text or "www." in text or "WWW." in text:
        text = _URL.sub(_url, text)
    if "@" in text:
        text = _emails(text)
    return _phones(text)
