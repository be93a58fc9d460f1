"""Realistic app-store reviews for load tests and benchmarks, written here (no data set needed).

Reviews are built from per-category templates and slot fillers, padded with extra sentences to
a drawn length of 3..150 words, over a dozen apps and all star ratings. Everything is drawn
from one `random.Random(seed)`: the same seed gives the same sequence of reviews.

About 30% of the reviews handed out reuse an earlier `review_id` (with the same text, as a
client retrying or re-classifying a review would), so the gateway's sticky assignment is
exercised: a repeated id must land on the variant it got the first time.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from gateway.request.triage import DEFAULT_CATEGORIES

MIN_WORDS = 3
MAX_WORDS = 150

APPS = (
    "ShopNest",
    "FitTrack Pro",
    "PhotoVault",
    "QuickBank",
    "StreamBox",
    "NoteKeeper",
    "RideNow",
    "FoodDash",
    "StudyBuddy",
    "WeatherWise",
    "ChatterUp",
    "BudgetBee",
)

_SLOTS: dict[str, tuple[str, ...]] = {
    "feature": (
        "login",
        "checkout",
        "search",
        "sync",
        "notifications",
        "photo upload",
        "video player",
        "offline mode",
        "export",
        "widget",
        "dark mode",
        "calendar",
        "payment screen",
        "settings page",
    ),
    "device": (
        "Pixel 8",
        "iPhone 15",
        "Galaxy S23",
        "iPad Air",
        "OnePlus 12",
        "Moto G",
        "iPhone SE",
    ),
    "os": ("Android 14", "iOS 18", "Android 13", "iOS 17", "iPadOS 18"),
    "version": ("4.2.1", "5.0", "5.0.3", "3.9.8", "6.1", "the latest update"),
    "time": ("yesterday", "since the update", "for a week", "every morning", "all day"),
    "wish": (
        "a dark mode",
        "an export to CSV",
        "family sharing",
        "a home screen widget",
        "offline access",
        "custom reminders",
        "two-factor login",
        "split payments",
    ),
    "thing": ("ads", "subscription price", "support team", "new layout", "loading times"),
    "good": ("design", "speed", "support team", "sync", "search", "widgets", "reminders"),
}

_CORE: dict[str, tuple[str, ...]] = dict(
    zip(
        DEFAULT_CATEGORIES,
        (
            (  # Bug Report
                "The app crashes every time I open the {feature} on my {device}.",
                "Since version {version} the {feature} is broken and shows an error.",
                "{feature} keeps freezing {time}, I have to force close it.",
                "I got charged twice at checkout and the payment screen froze.",
                "Can't log in after updating to {version}, it says login failed.",
                "The {feature} does not work on {os} at all.",
            ),
            (  # Feature Request
                "Please add {wish}, it would make this app perfect.",
                "It would be nice to have {wish} in the next version.",
                "I wish there was {wish}, I would pay for it.",
                "Could you add {wish}? Every other app has it.",
                "Feature request: {wish} and better {feature}.",
            ),
            (  # Complaint
                "Way too many ads, this is the worst update yet.",
                "The {thing} is terrible and way too expensive now.",
                "Horrible experience, the {thing} got worse {time}.",
                "Total waste of money, the {thing} is awful.",
                "I am disappointed with the {thing}, it feels like a scam.",
            ),
            (  # Praise
                "Love this app, the {good} is amazing.",
                "Best app I have used, the {good} is fantastic.",
                "Great {good} and excellent support, five stars.",
                "Awesome app, I use the {feature} {time} and it is perfect.",
                "Really impressed with the {good} after {version}.",
            ),
            (  # Question
                "How do I turn on {wish}?",
                "Is there a way to export my data from the {feature}?",
                "Why does the {feature} ask for my location?",
                "Can I use the app on my {device} and my iPad at once?",
                "Does the subscription include the {feature}?",
            ),
            (  # Other
                "Downloaded it {time}, no opinion yet.",
                "Using it on {os} for my family.",
                "My friend recommended it so I am trying it.",
                "Installed for work, will see how it goes.",
                "Third review this month, the app is fine I guess.",
            ),
        ),
        strict=True,
    )
)

_SHORT: dict[str, tuple[str, ...]] = dict(
    zip(
        DEFAULT_CATEGORIES,
        (
            ("Crashes on startup.", "Login broken again.", "Keeps freezing constantly."),
            ("Please add widgets.", "Need dark mode please.", "Add CSV export."),
            ("Too many ads.", "Way too expensive.", "Worst update ever."),
            ("Love this app!", "Great app, thanks!", "Absolutely fantastic app."),
            ("How to export?", "Where are settings?", "Is it free?"),
            ("Just installed it.", "It is okay.", "Using it daily."),
        ),
        strict=True,
    )
)

_EXTRA: dict[str, tuple[str, ...]] = dict(
    zip(
        DEFAULT_CATEGORIES,
        (
            (
                "I tried reinstalling and clearing the cache but nothing changed.",
                "It happens on my {device} running {os}.",
                "Support asked for logs, which I sent {time}.",
                "The screen goes white and then the app closes.",
                "I lost my draft twice because of this bug.",
            ),
            (
                "Right now I have to use a second app for it.",
                "My whole team has been asking for this.",
                "Even a simple version would be enough to start.",
                "The {feature} is good but this would make it better.",
            ),
            (
                "I have been a paying user for three years.",
                "The {feature} used to be fast and simple.",
                "Support never answered my emails.",
                "I am thinking about switching to another app.",
            ),
            (
                "The {feature} works exactly as expected.",
                "It saved me hours {time}.",
                "Keep up the good work, team.",
                "I recommend it to all my friends.",
            ),
            (
                "I could not find it in the help pages.",
                "I am on {os} if that matters.",
                "Thanks in advance for any answer.",
            ),
            (
                "Nothing special to report so far.",
                "The icon looks nice on my home screen.",
                "I might write more later.",
            ),
        ),
        strict=True,
    )
)

_FILLER = (
    "I use it {time} on my {device}.",
    "My version is {version} on {os}.",
    "I have had the app for about two years now.",
    "Overall the {good} is fine but this matters more to me.",
    "Writing this review so the developers see it.",
    "My partner uses it too and sees the same thing.",
    "I mostly open it on the train to work.",
    "Before this I used a different app for the same job.",
    "The {feature} is what I use the most.",
    "I gave it a few chances before writing this.",
    "Honestly the rest of the app is fine.",
    "Hope someone from the team reads these reviews.",
)

_RATINGS: dict[str, tuple[int, ...]] = dict(
    zip(
        DEFAULT_CATEGORIES,
        ((1, 2, 3), (3, 4, 5), (1, 2), (4, 5), (2, 3, 4), (1, 2, 3, 4, 5)),
        strict=True,
    )
)
_SLOT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True, slots=True)
class Review:
    review_id: str
    text: str
    app: str | None
    rating: int | None
    category: str  # the category the text was written for (not a label the gateway sees)

    def classify_body(self) -> dict[str, Any]:
        """The body of `POST /v1/classify` (also one item of a batch)."""
        body: dict[str, Any] = {"text": self.text, "review_id": self.review_id}
        if self.app is not None:
            body["app"] = self.app
        if self.rating is not None:
            body["rating"] = self.rating
        return body


class ReviewGenerator:
    """Deterministic stream of reviews; `repeat_rate` of them reuse an earlier review id."""

    def __init__(self, seed: int = 0, repeat_rate: float = 0.3, id_prefix: str = "rv") -> None:
        if not 0 <= repeat_rate < 1:
            raise ValueError("repeat_rate must be in [0, 1)")
        self._rng = random.Random(seed)
        self._repeat_rate = repeat_rate
        self._prefix = f"{id_prefix}{seed}"
        self._issued: list[Review] = []
        self.repeats = 0

    @property
    def distinct(self) -> int:
        """Review ids handed out so far."""
        return len(self._issued)

    def next(self) -> Review:
        if self._issued and self._rng.random() < self._repeat_rate:
            self.repeats += 1
            return self._rng.choice(self._issued)
        review = self._new(f"{self._prefix}-{len(self._issued):07d}")
        self._issued.append(review)
        return review

    def batch(self, size: int) -> list[Review]:
        return [self.next() for _ in range(size)]

    def __iter__(self) -> Iterator[Review]:
        while True:
            yield self.next()

    def _new(self, review_id: str) -> Review:
        rng = self._rng
        category = rng.choice(DEFAULT_CATEGORIES)
        target = self._length()
        text = self._text(category, target)
        app = rng.choice(APPS) if rng.random() < 0.9 else None
        rating = rng.choice(_RATINGS[category]) if rng.random() < 0.9 else None
        return Review(review_id, text, app, rating, category)

    def _length(self) -> int:
        """Mostly short reviews, a long tail up to MAX_WORDS (as in real stores)."""
        r = self._rng.random()
        if r < 0.3:
            return self._rng.randint(MIN_WORDS, 12)
        if r < 0.8:
            return self._rng.randint(13, 50)
        return self._rng.randint(51, MAX_WORDS)

    def _fill(self, template: str) -> str:
        return _SLOT.sub(lambda m: self._rng.choice(_SLOTS[m.group(1)]), template)

    def _text(self, category: str, target: int) -> str:
        """Whole sentences until `target` words (no sentence twice while others are left)."""
        rng = self._rng
        if target <= 5:
            return rng.choice(_SHORT[category])
        words = self._fill(rng.choice(_CORE[category])).split()
        pool: list[str] = []
        while len(words) < target:
            if not pool:
                pool = [*_EXTRA[category], *_EXTRA[category], *_FILLER]
                rng.shuffle(pool)
            words += self._fill(pool.pop()).split()
        if len(words) > MAX_WORDS:
            words = words[:MAX_WORDS]
            words[-1] = words[-1].rstrip(",.!?") + "."
        return " ".join(words)
