"""The domain stays pure (no I/O, no framework, no clock from the environment), and storage
reads no clock."""

import ast
from pathlib import Path

FORBIDDEN = {
    "sqlalchemy",
    "fastapi",
    "imapclient",
    "httpx",
    "jinja2",
    "asyncio",
    "os",
    "holidays",
    "socket",
    "requests",
    "app.storage",
    "app.mail",
    "app.services",
    "app.api",
}
DOMAIN = Path(__file__).resolve().parents[2] / "app" / "domain"


def test_domain_imports_nothing_impure() -> None:
    offenders = []
    for path in DOMAIN.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if any(name == f or name.startswith(f + ".") for f in FORBIDDEN):
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []
    assert len(list(DOMAIN.rglob("*.py"))) > 5  # the walk really saw the package


# Calls that read the wall clock. Storage takes `now` from its caller (the service's ctx.clock),
# so a test that freezes the clock freezes every timestamp written, end to end.
CLOCK_READS = {"now", "utcnow", "today", "time", "monotonic"}
STORAGE = DOMAIN.parent / "storage"


def test_storage_reads_no_clock() -> None:
    offenders = []
    for path in STORAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in CLOCK_READS
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in {"datetime", "date", "time"}
            ):
                offenders.append(f"{path.relative_to(STORAGE)}:{node.lineno}")
    assert offenders == [], f"storage reads the wall clock; take `now` from the caller: {offenders}"
    assert len(list(STORAGE.rglob("*.py"))) > 5
