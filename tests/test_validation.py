"""Parsing and repair of model answers, including property tests."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.request.triage import DEFAULT_TAXONOMY, Taxonomy
from gateway.request.validate import TriageValidationError, validate_triage

T = DEFAULT_TAXONOMY
words = st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1, max_size=12)
valid_triage = st.fixed_dictionaries(
    {
        "category": st.sampled_from(T.categories),
        "urgency": st.sampled_from(T.urgencies),
        "topic": st.lists(words, min_size=1, max_size=4).map(" ".join),
        "summary": st.lists(words, min_size=1, max_size=20).map(" ".join),
    }
)
chatter = st.text(alphabet=st.characters(exclude_characters="{}`"), max_size=80)


@given(valid_triage)
def test_plain_json_is_accepted_unchanged(answer: dict[str, str]) -> None:
    result = validate_triage(json.dumps(answer), T)
    assert result.triage.to_json_dict() == answer
    assert result.repaired is False


@given(valid_triage, chatter, chatter, st.booleans())
def test_json_inside_chatter_or_fences_is_recovered(
    answer: dict[str, str], before: str, after: str, fenced: bool
) -> None:
    body = json.dumps(answer, indent=2)
    raw = f"{before}\n```json\n{body}\n```\n{after}" if fenced else f"{before} {body} {after}"
    result = validate_triage(raw, T)
    assert result.triage.to_json_dict() == answer


@given(st.text(max_size=300))
def test_arbitrary_text_raises_only_validation_errors(raw: str) -> None:
    try:
        result = validate_triage(raw, T)
    except TriageValidationError as exc:
        assert exc.reason in {
            "not_json",
            "malformed_json",
            "missing_field",
            "bad_category",
            "bad_urgency",
        }
    else:
        assert result.triage.category in T.categories
        assert result.triage.urgency in T.urgencies


@settings(max_examples=50)
@given(valid_triage, st.sampled_from([str.lower, str.upper, str.title]))
def test_label_case_is_normalised(answer: dict[str, str], case: object) -> None:
    assert callable(case)
    raw = json.dumps(
        {**answer, "category": case(answer["category"]), "urgency": case(answer["urgency"])}
    )
    result = validate_triage(raw, T)
    assert result.triage.category == answer["category"]
    assert result.triage.urgency == answer["urgency"]


@pytest.mark.parametrize(
    ("given_label", "expected"),
    [
        ("bug", "Bug Report"),
        ("BUG_REPORT", "Bug Report"),
        ("feature", "Feature Request"),
        ("enhancement", "Feature Request"),
        ("inquiry", "Question"),
        ("compliment", "Praise"),
    ],
)
def test_category_synonyms(given_label: str, expected: str) -> None:
    raw = json.dumps({"category": given_label, "urgency": "urgent", "topic": "X", "summary": "Y."})
    result = validate_triage(raw, T)
    assert (result.triage.category, result.triage.urgency, result.repaired) == (
        expected,
        "Critical",
        True,
    )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("no json here", "not_json"),
        ('{"category": "Bug Report", "urgency": "High", "topic": "X"', "malformed_json"),
        ('{"category": "Banana", "urgency": "High", "topic": "X", "summary": "Y"}', "bad_category"),
        ('{"category": "Bug Report", "topic": "X", "summary": "Y"}', "missing_field"),
        (
            '{"category": "Bug Report", "urgency": "Soonish", "topic": "X", "summary": "Y"}',
            "bad_urgency",
        ),
        (
            '{"category": "Bug Report", "urgency": "High", "topic": "", "summary": "Y"}',
            "missing_field",
        ),
        ('{"category": 3, "urgency": "High", "topic": "X", "summary": "Y"}', "bad_category"),
    ],
)
def test_unrepairable_answers_name_the_problem(raw: str, reason: str) -> None:
    with pytest.raises(TriageValidationError) as err:
        validate_triage(raw, T)
    assert err.value.reason == reason


def test_long_topic_and_summary_are_clipped_at_a_word() -> None:
    raw = json.dumps(
        {"category": "Other", "urgency": "Low", "topic": "word " * 30, "summary": "s " * 400}
    )
    result = validate_triage(raw, T)
    assert len(result.triage.topic) <= 60 and result.triage.topic.endswith("word")
    assert len(result.triage.summary) <= 300 and result.repaired


def test_custom_taxonomy_rejects_default_labels_and_skips_foreign_synonyms() -> None:
    custom = Taxonomy(categories=("Billing", "Other"), urgencies=("P1", "P2"))
    ok = validate_triage(
        '{"category": "billing", "urgency": "p2", "topic": "X", "summary": "Y"}', custom
    )
    assert (ok.triage.category, ok.triage.urgency) == ("Billing", "P2")
    with pytest.raises(TriageValidationError, match="not one of: Billing, Other"):
        validate_triage(
            '{"category": "bug", "urgency": "P1", "topic": "X", "summary": "Y"}', custom
        )
