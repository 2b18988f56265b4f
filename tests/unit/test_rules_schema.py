"""One rules schema: the API's and the pages' body (services.rules_schema.RulesBody) must take
exactly the rules the domain takes (domain.model.Rules, RULE_LIMITS) with the same defaults,
and show them as the stored JSON (domain.ruleset) does. Each test fails on any drift."""

from __future__ import annotations

from datetime import date, time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import Field, ValidationError

from app.domain.model import RULE_LIMITS, Bounds, Rules, TimeOff
from app.domain.ruleset import RulesJson, rules_from_dict, rules_to_dict
from app.services.rules_schema import RulesBody


def _bound_drift(name: str, prop: dict[str, Any], bounds: Bounds) -> list[str]:
    low_key = "exclusiveMinimum" if bounds.low_open else "minimum"
    other = "minimum" if bounds.low_open else "exclusiveMinimum"
    found = []
    if prop.get(low_key) != bounds.low or other in prop:
        found.append(f"{name}: low end {prop.get(low_key, prop.get(other))} != {bounds}")
    if prop.get("maximum") != bounds.high:
        found.append(f"{name}: high end {prop.get('maximum')} != {bounds.high}")
    return found


def drift(body: type[RulesBody]) -> list[str]:
    """Where `body`'s published schema and defaults differ from the domain's."""
    props = body.model_json_schema()["properties"]
    limits = RULE_LIMITS
    found = [
        *_bound_drift("wait_business_days", props["wait_business_days"], limits.wait_days),
        *_bound_drift("cadence step", props["cadence_business_days"]["items"], limits.wait_days),
        *_bound_drift("max_followups", props["max_followups"], limits.max_followups),
        *_bound_drift(
            "auto_reply_pause_business_days",
            props["auto_reply_pause_business_days"],
            limits.wait_days,
        ),
        *_bound_drift(
            "response_time_business_hours",
            props["response_time_business_hours"],
            limits.response_time_hours,
        ),
    ]
    cadence = props["cadence_business_days"]
    if (cadence.get("minItems"), cadence.get("maxItems")) != (
        limits.cadence_steps.low,
        limits.cadence_steps.high,
    ):
        found.append(f"cadence steps: {cadence.get('minItems')}..{cadence.get('maxItems')}")
    if props["time_off"].get("maxItems") != limits.time_off_ranges:
        found.append(f"time_off ranges: {props['time_off'].get('maxItems')}")
    if list(body.model_fields) != list(RulesJson.__annotations__):
        found.append(f"fields: {list(body.model_fields)} != {list(RulesJson.__annotations__)}")
    defaults = body().model_dump(mode="json")
    if defaults != rules_to_dict(Rules()):
        found.append(f"defaults: {defaults} != {rules_to_dict(Rules())}")
    return found


def test_the_api_schema_is_the_domains() -> None:
    assert drift(RulesBody) == []


class _Drifted(RulesBody):
    # What the API once said beside a domain that allowed 0: the checker must see such a gap.
    response_time_business_hours: float = Field(1.0, ge=0, le=40)


class _OtherDefault(RulesBody):
    max_followups: int = Field(4, ge=0, le=10)


def test_a_drifted_schema_is_caught() -> None:
    assert drift(_Drifted) == [
        "response_time_business_hours: low end 0 != Bounds(low=0, high=40, low_open=True)"
    ]
    assert [d.split(":")[0] for d in drift(_OtherDefault)] == ["defaults"]


def test_response_time_zero_is_refused_by_both() -> None:
    # Zero would flag every answer as owed the moment it arrives (see RuleLimits).
    with pytest.raises(ValidationError, match="response_time_business_hours"):
        RulesBody.model_validate({"response_time_business_hours": 0})
    with pytest.raises(ValueError, match="response_time_business_hours"):
        Rules(response_time_business_hours=0)
    assert Rules(response_time_business_hours=0.25).response_time_business_hours == 0.25


# Values around every bound, so that a bound one side has and the other has not shows up.
_days = st.integers(-1, 62)
_hours = st.sampled_from([-1.0, 0.0, 0.01, 0.25, 1.0, 39.99, 40.0, 40.01, 100.0])
_clock = st.sampled_from(["00:00", "08:30", "09:00", "17:00", "23:59"])
_day = st.dates(min_value=date(1999, 12, 1), max_value=date(2101, 1, 31))


def _range(start: date, span: int) -> dict[str, str]:
    return {
        "start": start.isoformat(),
        "end": date.fromordinal(start.toordinal() + span).isoformat(),
    }


_time_off = st.builds(_range, _day, st.integers(-2, 370))
bodies = st.fixed_dictionaries(
    {},
    optional={
        "wait_business_days": _days,
        "cadence_business_days": st.lists(_days, min_size=0, max_size=11),
        "max_followups": st.integers(-1, 11),
        "auto_reply_pause_business_days": _days,
        "response_time_business_hours": _hours,
        "working_hours": st.fixed_dictionaries({"start": _clock, "end": _clock}),
        "time_off": st.lists(_time_off, max_size=3),
    },
)


@settings(max_examples=400, deadline=None)
@given(body=bodies)
def test_the_api_takes_exactly_what_the_domain_takes(body: dict[str, Any]) -> None:
    try:
        domain: Rules | None = rules_from_dict(body)
    except ValueError:
        domain = None
    try:
        api: Rules | None = RulesBody.model_validate(body).to_rules()
    except ValidationError:
        api = None
    assert api == domain, body


def test_many_time_off_ranges_are_bounded_alike() -> None:
    day = {"start": "2026-01-05", "end": "2026-01-05"}
    for count in (RULE_LIMITS.time_off_ranges, RULE_LIMITS.time_off_ranges + 1):
        body = {"time_off": [day] * count}
        takes = count <= RULE_LIMITS.time_off_ranges
        assert (len(RulesBody.model_validate(body).time_off) == count) if takes else True
        if not takes:
            with pytest.raises(ValidationError):
                RulesBody.model_validate(body)
            with pytest.raises(ValueError):
                rules_from_dict(body)


rule_values = st.builds(
    Rules,
    wait_business_days=st.integers(1, 60),
    cadence_business_days=st.lists(st.integers(1, 60), min_size=1, max_size=10).map(tuple),
    max_followups=st.integers(0, 10),
    auto_reply_pause_business_days=st.integers(1, 60),
    response_time_business_hours=st.sampled_from([0.25, 1.0, 2.5, 40.0]),
    work_day_start=st.just(time(8, 30)),
    work_day_end=st.sampled_from([time(12, 0), time(18, 0)]),
    time_off=st.lists(
        st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 1)).map(
            lambda d: TimeOff(start=d, end=d)
        ),
        max_size=3,
    ).map(tuple),
)


@settings(max_examples=200, deadline=None)
@given(rules=rule_values)
def test_the_api_shows_rules_as_they_are_stored(rules: Rules) -> None:
    shown = RulesBody.of(rules)
    assert shown.model_dump(mode="json") == rules_to_dict(rules)
    assert shown.to_rules() == rules == rules_from_dict(rules_to_dict(rules))
