"""The follow-up question: Jinja2 templates that reps may edit, so they run sandboxed.

Templates are grouped by stage (`first`, `middle`, `last`, see `domain.followup.stage_of`);
each stage has several variants, rotated by thread id. The defaults live in
`templates/drafts/STAGE-N.j2`; a mailbox may replace any stage's variants. A template is
checked when it is saved: a syntax error, an unknown variable or a refused operation is
reported with its line, so that nothing breaks later when a draft is composed.
"""

from __future__ import annotations

import re
import threading
import time
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
# Bounds that hold whatever a saved template says (it has no loops: its work is bounded by its
# length once each operation is): numbers written in it, the size of any number it computes
# (Python refuses to print an int of more than 4,300 digits), what one render may output and
# how long it may take.
MAX_NUMBER = 1_000_000
MAX_NUMBER_BITS = 4096  # about 1,200 digits
MAX_OUTPUT_CHARS = 10_000
RENDER_SECONDS = 0.5
_NUMERIC_VARIABLES = frozenset({"business_days_quiet", "step"})
_NUMERIC_FILTERS = frozenset({"int", "length"})
_ARITHMETIC = (nodes.Add, nodes.Sub, nodes.Mul, nodes.Div, nodes.FloorDiv, nodes.Mod)
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


class _Budget(threading.local):
    deadline = float("inf")  # time.monotonic() by which the render in this thread must end


_BUDGET = _Budget()


class _QuestionEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, narrowed to what one short question needs, so that a template saved by
    anyone can neither reach Python internals nor make the server build huge strings or
    numbers: no attribute or method access, no globals (range …), a short list of filters,
    no `**`, and every other arithmetic operator checked before it runs (and against the
    render's time budget). Statements other than `{% if %}` are refused at save."""

    intercepted_binops = frozenset({"*", "**", "%", "+", "-", "/", "//"})

    def is_safe_attribute(self, obj: object, attr: str, value: object) -> bool:
        return False

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if time.monotonic() > _BUDGET.deadline:
            raise SecurityError(f"rendering took longer than {RENDER_SECONDS} s")
        sequences = (str, list, tuple)
        if operator == "**":  # refused when saved; a template stored before is refused here
            raise SecurityError("exponents (**) are not allowed")
        if operator == "%" and isinstance(left, str):
            raise SecurityError("text formatting with % is not allowed: join text with ~")
        if operator == "*" and (isinstance(left, sequences) or isinstance(right, sequences)):
            raise SecurityError("repeating text with * is not allowed")
        if (
            operator == "*"
            and isinstance(left, int)
            and isinstance(right, int)
            and left.bit_length() + right.bit_length() > MAX_NUMBER_BITS
        ):
            raise SecurityError("the number would be too large to print")
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
    except RecursionError:  # e.g. a thousand nested parentheses
        raise TemplateProblem(f"{where}: nested too deeply") from None
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
    _check_arithmetic(tree, where)
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


def _check_arithmetic(tree: nodes.Template, where: str) -> None:
    """Refuse what no time or size bound could hold once it runs: `**` (9**64**64**64 runs
    for hours), text repeated with `*` or formatted with `%`, and numbers too large to
    print. Only numbers may be multiplied, divided or taken modulo."""
    for node in tree.find_all((nodes.Pow, nodes.Const, *_ARITHMETIC)):
        at = f"{where}, line {node.lineno}"
        if isinstance(node, nodes.Pow):
            raise TemplateProblem(f"{at}: exponents (**) are not allowed in a question template")
        if isinstance(node, nodes.Const):
            value = node.value
            if isinstance(value, int | float) and abs(value) > MAX_NUMBER:
                raise TemplateProblem(f"{at}: numbers above {MAX_NUMBER:,} are not allowed")
            continue
        if isinstance(node, nodes.Add | nodes.Sub):
            continue  # text is joined with ~; + of two texts is bounded by their lengths
        assert isinstance(node, nodes.BinExpr)
        if not (_numeric(node.left) and _numeric(node.right)):
            what = {
                nodes.Mul: "repeating text with * is not allowed",
                nodes.Mod: "text formatting with % is not allowed: join text with ~",
            }.get(type(node), f"{node.operator} is for numbers only")
            raise TemplateProblem(f"{at}: {what} (only numbers can be computed)")


def _numeric(node: nodes.Node) -> bool:
    """Whether an expression can only be a number (numbers, numeric variables, |int,
    |length, and arithmetic of those)."""
    if isinstance(node, nodes.Const):
        return isinstance(node.value, int | float)
    if isinstance(node, nodes.Name):
        return node.name in _NUMERIC_VARIABLES
    if isinstance(node, nodes.Filter):
        return node.name in _NUMERIC_FILTERS
    if isinstance(node, nodes.Neg | nodes.Pos):
        return _numeric(node.node)
    if isinstance(node, _ARITHMETIC):
        return _numeric(node.left) and _numeric(node.right)
    if isinstance(node, nodes.CondExpr):
        return _numeric(node.expr1) and (node.expr2 is None or _numeric(node.expr2))
    return False


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
    """Render within the time budget and the output cap. Whatever goes wrong inside (a
    refused operation, a division by zero, a number too large to print) is a
    TemplateProblem naming the line, never an error of the server."""
    try:
        template = _compiled(source)
    except TemplateError as exc:
        raise _problem(where, exc, exc.message or type(exc).__name__) from None
    except (RecursionError, MemoryError, SyntaxError):  # Python's compiler gave up on it
        raise TemplateProblem(f"{where}: the template is nested too deeply") from None
    _BUDGET.deadline = time.monotonic() + RENDER_SECONDS
    parts: list[str] = []
    size = 0
    late = False
    try:
        for part in template.generate(**variables):
            size += len(part)
            late = time.monotonic() > _BUDGET.deadline
            if size > MAX_OUTPUT_CHARS or late:
                break
            parts.append(part)
    except TemplateError as exc:
        raise _problem(where, exc, exc.message or type(exc).__name__) from None
    except (ArithmeticError, ValueError, TypeError, RecursionError, MemoryError) as exc:
        raise _problem(where, exc, f"cannot be computed: {exc}"[:200]) from None
    finally:
        _BUDGET.deadline = float("inf")
    if size > MAX_OUTPUT_CHARS:
        raise TemplateProblem(f"{where}: renders to more than {MAX_OUTPUT_CHARS} characters")
    if late:
        raise TemplateProblem(f"{where}: rendering took longer than {RENDER_SECONDS} s")
    text = "".join(parts)
    return " ".join(text.split()) if "\n" not in text.strip() else text.strip()


def _problem(where: str, exc: BaseException, words: str) -> TemplateProblem:
    line = getattr(exc, "lineno", None) or _template_line(exc.__traceback__)
    at = f", line {line}" if line else ""
    return TemplateProblem(f"{where}{at}: {words}")


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
