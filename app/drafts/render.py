"""The follow-up question: Jinja2 templates that reps may edit, so they run sandboxed.

Templates are grouped by stage (`first`, `middle`, `last`, see `domain.followup.stage_of`);
each stage has several variants, rotated by thread id. The defaults live in
`templates/drafts/STAGE-N.j2`; a mailbox may replace any stage's variants. A template is
checked when it is saved: a syntax error, an unknown variable or a refused operation is
reported with its line, so that nothing breaks later when a draft is composed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from app.domain.followup import TEMPLATE_VARIABLES
from app.resources import templates_dir

STAGES = ("first", "middle", "last")
MAX_VARIANTS = 10
MAX_TEMPLATE_CHARS = 2000
MAX_QUESTION_CHARS = 600  # one short question, not a second e-mail
_FILE_RE = re.compile(r"^(first|middle|last)-(\d+)\.j2$")
# Values that exercise every branch a template may take when it is checked at save time.
_SAMPLES: tuple[Mapping[str, str | int], ...] = (
    {
        "first_name": "Anna",
        "company": "Buyer",
        "business_days_quiet": 3,
        "next_step_date": "Thursday 3 December",
        "subject": "Proposal",
        "step": 2,
    },
    {
        "first_name": "",
        "company": "",
        "business_days_quiet": 0,
        "next_step_date": "",
        "subject": "",
        "step": 1,
    },
)


class TemplateProblem(ValueError):
    """A template that cannot be used; the message names the stage, variant and line."""


@dataclass(frozen=True, kw_only=True)
class QuestionTemplates:
    """Template sources by stage; every stage has at least one variant."""

    stages: Mapping[str, tuple[str, ...]]

    def variants(self, stage: str) -> tuple[str, ...]:
        return self.stages[stage]


class _QuestionEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, narrowed to what one short question needs, so that a template saved by
    anyone can neither reach Python internals nor make the server build huge strings: no
    attribute or method access, no globals (range …), a short list of filters, and `*`, `**`
    and `%` checked before they run. Statements other than `{% if %}` are refused at save."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def is_safe_attribute(self, obj: object, attr: str, value: object) -> bool:
        return False

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        sequences = (str, list, tuple)
        if operator == "%" and isinstance(left, str):
            raise SecurityError("text formatting with % is not allowed: join text with ~")
        if operator == "**" and not (isinstance(right, int) and abs(right) <= 64):
            raise SecurityError("exponents above 64 are not allowed")
        if operator == "*" and (isinstance(left, sequences) or isinstance(right, sequences)):
            seq, times = (left, right) if isinstance(left, sequences) else (right, left)
            if not isinstance(times, int) or len(seq) * max(times, 0) > MAX_QUESTION_CHARS:
                raise SecurityError(f"repeating text beyond {MAX_QUESTION_CHARS} characters")
        return super().call_binop(context, operator, left, right)


_FILTERS = (
    "capitalize",
    "d",
    "default",
    "e",
    "escape",
    "int",
    "length",
    "lower",
    "string",
    "title",
    "trim",
    "truncate",
    "upper",
)
# Statements a question may use; loops, assignments, macros and includes could make it
# unbounded or reach other templates.
_ALLOWED_STATEMENTS = (nodes.Output, nodes.If)
_TAGS = {"Assign": "set", "AssignBlock": "set", "CallBlock": "call", "FilterBlock": "filter"}
_TAGS |= {"FromImport": "from", "ExprStmt": "do", "ScopedEvalContextModifier": "autoescape"}


def _environment() -> _QuestionEnvironment:
    # Plain text: the HTML part escapes the rendered question itself.
    env = _QuestionEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
    )
    env.globals.clear()
    env.filters = {name: env.filters[name] for name in _FILTERS}
    env.tests = {name: env.tests[name] for name in ("defined", "none", "number", "string")}
    return env


_ENV = _environment()


def default_template_dir() -> Path:
    return templates_dir() / "drafts"


@lru_cache(maxsize=4)
def load_defaults(directory: Path | None = None) -> QuestionTemplates:
    folder = directory or default_template_dir()
    found: dict[str, list[tuple[int, str]]] = {stage: [] for stage in STAGES}
    for path in sorted(folder.glob("*.j2")):
        match = _FILE_RE.match(path.name)
        if match:
            found[match.group(1)].append((int(match.group(2)), path.read_text("utf-8").strip()))
    missing = [stage for stage, variants in found.items() if not variants]
    if missing:
        raise TemplateProblem(f"no question templates for {', '.join(missing)} in {folder}")
    templates = QuestionTemplates(
        stages={stage: tuple(src for _, src in sorted(v)) for stage, v in found.items()}
    )
    for stage in STAGES:
        check_variants(stage, templates.variants(stage))
    return templates


def with_overrides(
    defaults: QuestionTemplates, overrides: Mapping[str, Sequence[str]] | None
) -> QuestionTemplates:
    """A mailbox's templates: its own variants where it has some, the defaults elsewhere."""
    stages = dict(defaults.stages)
    for stage, variants in (overrides or {}).items():
        if stage in STAGES and variants:
            stages[stage] = tuple(variants)
    return QuestionTemplates(stages=stages)


def check_variants(stage: str, variants: Sequence[str]) -> tuple[str, ...]:
    """Every variant of a stage, stripped, or TemplateProblem naming the first bad one."""
    if stage not in STAGES:
        raise TemplateProblem(f"unknown stage {stage!r}: use one of {', '.join(STAGES)}")
    if not variants:
        raise TemplateProblem(f"{stage}: give at least one template (or null for the defaults)")
    if len(variants) > MAX_VARIANTS:
        raise TemplateProblem(f"{stage}: at most {MAX_VARIANTS} variants, got {len(variants)}")
    return tuple(check_template(source, where=f"{stage}[{i}]") for i, source in enumerate(variants))


def check_template(source: str, *, where: str = "template") -> str:
    """The stripped source, if it parses, uses only known variables and renders to a short
    question with sample values; else TemplateProblem with the line."""
    source = source.strip()
    if not source:
        raise TemplateProblem(f"{where}: the template is empty")
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateProblem(f"{where}: longer than {MAX_TEMPLATE_CHARS} characters")
    if not _printable_lines(source):
        raise TemplateProblem(f"{where}: control characters are not allowed")
    try:
        tree = _ENV.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"{where}, line {exc.lineno}: syntax error: {exc.message}") from None
    for statement in tree.find_all(nodes.Stmt):
        if not isinstance(statement, _ALLOWED_STATEMENTS):
            kind = type(statement).__name__
            tag = _TAGS.get(kind, kind.lower())
            raise TemplateProblem(
                f"{where}, line {statement.lineno}: {{% {tag} %}} is not allowed in a question "
                "template (only {% if %})"
            )
    for name in tree.find_all(nodes.Name):
        if name.ctx == "load" and name.name not in TEMPLATE_VARIABLES:
            raise TemplateProblem(
                f"{where}, line {name.lineno}: unknown variable {name.name!r}; "
                f"known: {', '.join(TEMPLATE_VARIABLES)}"
            )
    for sample in _SAMPLES:
        question = _render(source, sample, where)
        if not question:
            continue
        if len(question) > MAX_QUESTION_CHARS:
            raise TemplateProblem(
                f"{where}: renders to {len(question)} characters; keep the question under "
                f"{MAX_QUESTION_CHARS}"
            )
    return source


def _printable_lines(source: str) -> bool:
    # Lone surrogates (from JSON escapes) cannot be stored or mailed; newlines and tabs can.
    try:
        source.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return all(line.replace("\t", " ").isprintable() for line in source.splitlines())


def pick_variant(variants: Sequence[str], thread_id: int) -> int:
    """Deterministic rotation: one thread always gets the same variant of a stage."""
    return thread_id % len(variants)


def render_question(
    templates: QuestionTemplates,
    *,
    stage: str,
    thread_id: int,
    variables: Mapping[str, str | int],
) -> str:
    variants = templates.variants(stage)
    index = pick_variant(variants, thread_id)
    question = _render(variants[index], variables, f"{stage}[{index}]")
    if not question:  # e.g. an {% if %} that left nothing: fall back to the first variant
        question = _render(variants[0], variables, f"{stage}[0]")
    if not question:
        raise TemplateProblem(f"{stage}: the templates render to nothing for this thread")
    return question


def _render(source: str, variables: Mapping[str, str | int], where: str) -> str:
    try:
        text = _compiled(source).render(**variables)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None) or _template_line(exc.__traceback__)
        at = f", line {line}" if line else ""
        raise TemplateProblem(f"{where}{at}: {exc.message or type(exc).__name__}") from None
    return " ".join(text.split()) if "\n" not in text.strip() else text.strip()


@lru_cache(maxsize=256)
def _compiled(source: str) -> Template:
    # from_string compiles on every call (only loaded templates are cached), and compiling
    # costs more than rendering: a first sync that drafts 20,000 follow-ups spent ~12% of
    # its drafting time compiling the same few variants again. Templates render reentrantly.
    return _ENV.from_string(source)


def _template_line(tb: TracebackType | None) -> int | None:
    """Jinja rewrites tracebacks so that template frames carry the template's own line."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def render_variants(
    templates: QuestionTemplates, *, stage: str, variables: Mapping[str, str | int]
) -> list[str]:
    """Every variant of a stage rendered for one thread, for the rep to pick another; a
    variant that fails or renders to nothing is left out."""
    out: list[str] = []
    for index, source in enumerate(templates.variants(stage)):
        try:
            question = _render(source, variables, f"{stage}[{index}]")
        except TemplateProblem:
            continue
        if question and question not in out:
            out.append(question)
    return out
