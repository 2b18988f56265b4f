"""Question templates: defaults per stage, rotation, the sandbox, and checks at save time."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from app.drafts import render
from app.drafts.render import (
    MAX_OUTPUT_CHARS,
    STAGES,
    QuestionTemplates,
    TemplateProblem,
    check_template,
    check_variants,
    load_defaults,
    pick_variant,
    render_question,
    with_overrides,
)

VARIABLES: dict[str, str | int] = {
    "first_name": "Anna",
    "company": "Buyer",
    "business_days_quiet": 4,
    "next_step_date": "Thursday 3 December",
    "subject": "Proposal",
    "step": 2,
}
GREETINGS = ("hi ", "hello", "dear ", "hallo", "best,", "regards", "cheers")


def test_defaults_have_several_variants_per_stage_and_all_pass_the_checks() -> None:
    defaults = load_defaults()
    for stage in STAGES:
        assert len(defaults.variants(stage)) >= 3, stage
        assert check_variants(stage, defaults.variants(stage))


def test_default_questions_say_what_each_stage_should() -> None:
    defaults = load_defaults()
    first = [
        render_question(defaults, stage="first", thread_id=i, variables=VARIABLES) for i in range(4)
    ]
    assert any("buried" in q for q in first)
    assert any("good next step" in q for q in first)
    assert any("priority" in q for q in first)
    middle = [
        render_question(defaults, stage="middle", thread_id=i, variables=VARIABLES)
        for i in range(3)
    ]
    assert all("Thursday 3 December" in q for q in middle)  # a concrete date
    last = [
        render_question(defaults, stage="last", thread_id=i, variables=VARIABLES) for i in range(3)
    ]
    assert all(("no" in q.lower()) or ("stop" in q.lower()) for q in last)  # permission
    for question in first + middle + last:
        assert not question.lower().startswith(GREETINGS), question
        assert "\n" not in question and len(question) < 200


def test_rotation_is_deterministic_per_thread_and_covers_every_variant() -> None:
    defaults = load_defaults()
    variants = defaults.variants("first")
    seen = {pick_variant(variants, thread_id) for thread_id in range(100)}
    assert seen == set(range(len(variants)))
    once = render_question(defaults, stage="first", thread_id=42, variables=VARIABLES)
    again = render_question(defaults, stage="first", thread_id=42, variables=VARIABLES)
    assert once == again
    assert render_question(defaults, stage="first", thread_id=43, variables=VARIABLES) != once


def test_optional_words_disappear_when_a_variable_is_empty() -> None:
    templates = QuestionTemplates(
        stages={
            s: ("What would be a good next step{% if company %} for {{ company }}{% endif %}?",)
            for s in STAGES
        }
    )
    empty = {**VARIABLES, "company": ""}
    assert render_question(templates, stage="first", thread_id=1, variables=empty) == (
        "What would be a good next step?"
    )


def test_overrides_replace_a_stage_and_keep_the_others() -> None:
    defaults = load_defaults()
    mine = with_overrides(defaults, {"middle": ["Checking in — {{ first_name }}?"], "first": []})
    assert mine.variants("middle") == ("Checking in — {{ first_name }}?",)
    assert mine.variants("first") == defaults.variants("first")
    assert render_question(mine, stage="middle", thread_id=5, variables=VARIABLES) == (
        "Checking in — Anna?"
    )


@pytest.mark.parametrize(
    ("source", "complaint"),
    [
        ("Hello\nthere\n{{ first_name | }}", "line 3: syntax error"),
        ("Hello\n{% if company %}\nno end", "syntax error"),
        ("Fine\n\n{{ frist_name }}?", "line 3: unknown variable 'frist_name'"),
        ("{{ company }}\n{{ first_name.__class__.__mro__ }}", "line 2"),
        ("{{ ''.__class__ }}", "unsafe"),
        ("{{ range.__globals__ }}", "line 1"),
        ("", "empty"),
        ("Nul\x00?", "control characters"),
        ("Broken \ud800?", "control characters"),
        ("Is this long? " * 50, "renders to 699 characters"),
    ],
)
def test_bad_templates_are_refused_naming_the_line(source: str, complaint: str) -> None:
    with pytest.raises(TemplateProblem) as caught:
        check_template(source, where="middle[1]")
    assert str(caught.value).startswith("middle[1]")
    assert complaint in str(caught.value)


def test_the_sandbox_refuses_unsafe_access_at_render_time_too() -> None:
    templates = QuestionTemplates(
        stages={s: ("{{ subject.__class__.__subclasses__() }}",) for s in STAGES}
    )
    with pytest.raises(TemplateProblem, match="unsafe"):
        render_question(templates, stage="first", thread_id=1, variables=VARIABLES)


@pytest.mark.parametrize(
    ("source", "complaint"),
    [
        ("{% for i in [1, 2] %}x{% endfor %}", "{% for %} is not allowed"),
        ("Hi\n{% set who = first_name %}{{ who }}", "line 2: {% set %} is not allowed"),
        ("{% include 'first-1.j2' %}", "{% include %} is not allowed"),
        ("{% macro m() %}x{% endmacro %}", "{% macro %} is not allowed"),
        ("{{ range(10) }}", "unknown variable 'range'"),
        ("{{ first_name.ljust(999999) }}", "unsafe"),
        ("{{ first_name|center(999999) }}", "No filter named 'center'"),
        ("{{ first_name * 100000 }}", "repeating text"),
        ("{{ 9 ** 9999 }}", "exponents"),
        ("{{ '%99999s' % first_name }}", "formatting with %"),
    ],
)
def test_only_what_a_short_question_needs_is_allowed(source: str, complaint: str) -> None:
    """Anything that could reach Python internals or build huge strings is refused at save."""
    with pytest.raises(TemplateProblem, match=re.escape(complaint)):
        check_template(source)


def test_conditions_filters_and_concatenation_are_allowed() -> None:
    source = (
        "{% if company %}{{ company|title }}{% else %}you{% endif %} — "
        "{{ (first_name ~ ',')|trim }} {{ step + 1 }}?"
    )
    assert check_template(source) == source


def test_check_variants_limits() -> None:
    with pytest.raises(TemplateProblem, match="at least one"):
        check_variants("first", [])
    with pytest.raises(TemplateProblem, match="unknown stage"):
        check_variants("fourth", ["Hi?"])
    with pytest.raises(TemplateProblem, match="at most"):
        check_variants("first", ["Q?"] * 11)


def test_a_template_folder_without_a_stage_is_refused(tmp_path: Path) -> None:
    (tmp_path / "first-1.j2").write_text("Buried?")
    with pytest.raises(TemplateProblem, match="middle, last"):
        load_defaults(tmp_path)


@pytest.mark.parametrize(
    ("source", "complaint"),
    [
        ("{{ 9**64**64**64**64 }}", "line 1: exponents (**) are not allowed"),
        ("Hi\n{{ 9**64**64**64 }}", "line 2: exponents (**) are not allowed"),
        ("{{ 'x' * 99999999 }}", "repeating text with * is not allowed"),
        ("{{ first_name * step }}", "repeating text with * is not allowed"),
        ("{{ step * (subject ~ 'x') }}", "repeating text with * is not allowed"),
        ("{{ 10000001 * step }}", "numbers above 1,000,000 are not allowed"),
        ("{{ subject|truncate(99999999999) }}", "numbers above 1,000,000"),
        ("{{ first_name / 2 }}", "/ is for numbers only"),
        ("{{ 1 // 0 }}", "cannot be computed: integer division or modulo by zero"),
        ("{{ step // business_days_quiet }}", "cannot be computed"),  # a sample has 0 days
        ("{{ " + "(" * 990 + "1" + ")" * 990 + " }}", "nested too deeply"),
    ],
)
def test_what_cannot_be_bounded_is_refused_at_save(source: str, complaint: str) -> None:
    """Issue 15: `{{ 9**64**64**64**64 }}` froze the server for 14 s, then answered 500."""
    started = time.monotonic()
    with pytest.raises(TemplateProblem, match=re.escape(complaint)):
        check_template(source)
    assert time.monotonic() - started < 0.5


def test_numbers_may_still_be_computed() -> None:
    source = "{{ business_days_quiet * 8 }} working hours, step {{ (step + 1) // 2 }}?"
    assert check_template(source) == source


def test_a_render_is_bounded_whatever_the_thread_brings() -> None:
    """Saved templates are checked with sample values; a thread's own values (a subject the
    prospect chose) can still be huge: the render stays bounded and fails as a problem."""
    huge = {**VARIABLES, "subject": "9" * 1200, "first_name": "x" * 6000}
    for source, complaint in [
        ("{{ (subject|int) * (subject|int) * (subject|int) * (subject|int) }}", "too large"),
        ("{{ first_name ~ first_name }}", f"more than {MAX_OUTPUT_CHARS} characters"),
    ]:
        assert check_template(source) == source  # harmless with the sample values
        templates = QuestionTemplates(stages={s: (source,) for s in STAGES})
        with pytest.raises(TemplateProblem, match=re.escape(complaint)):
            render_question(templates, stage="first", thread_id=1, variables=huge)


def test_a_render_stops_at_its_time_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "RENDER_SECONDS", 0.0)
    templates = QuestionTemplates(stages={s: ("{{ step + 1 }} more?",) for s in STAGES})
    with pytest.raises(TemplateProblem, match="took longer than"):
        render_question(templates, stage="first", thread_id=1, variables=VARIABLES)
