"""The domain stays pure: no I/O, no framework, no clock from the environment."""

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
