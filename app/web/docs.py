"""/docs: Swagger UI from the files of the swagger-ui-bundle package, so it works on a
machine without internet (FastAPI's own page loads them from a CDN)."""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle
from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response

router = APIRouter(include_in_schema=False)
_ASSETS = Path(swagger_ui_bundle.swagger_ui_path)
_SERVED = {"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png", "favicon-16x16.png"}
_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Radio Silence API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/static/docs.js"></script>
</body>
</html>
"""


@router.get("/docs")
async def docs() -> HTMLResponse:
    return HTMLResponse(_PAGE)


@router.get("/docs/assets/{name}")
async def asset(name: str) -> Response:
    if name not in _SERVED:
        return Response(status_code=404)
    return FileResponse(_ASSETS / name, headers={"Cache-Control": "public, max-age=86400"})
