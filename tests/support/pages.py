"""An in-process browser for the pages: the real app, a cookie jar, forms read from the HTML
(datasette's test_html style). What a page shows is asserted on its parsed text."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from html.parser import HTMLParser

import httpx

from app.main import create_app
from app.services.context import Context


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)


class _Reader(HTMLParser):
    """The page's visible text and its forms (hidden fields included)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.forms: list[Form] = []
        self._skip = 0
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag in ("script", "style", "title"):
            self._skip += 1
        if tag == "form":
            self.forms.append(Form(action=a.get("action", ""), method=a.get("method", "get")))
        elif tag == "input" and self.forms and a.get("name"):
            if a.get("type") not in ("checkbox", "radio") or "checked" in a:
                self.forms[-1].fields[a["name"]] = a.get("value", "")
        elif tag == "textarea" and self.forms and a.get("name"):
            self._textarea = a["name"]
            self.forms[-1].fields[a["name"]] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None
        if tag in ("script", "style", "title"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self.forms[-1].fields[self._textarea] += data
        if not self._skip and data.strip():
            self.text.append(" ".join(data.split()))


@dataclass
class Page:
    status: int
    html: str
    text: str
    forms: list[Form]
    location: str | None

    def form(self, action: str) -> Form:
        for form in self.forms:
            if form.action == action:
                return form
        raise AssertionError(
            f"no form posting to {action}; forms: {[f.action for f in self.forms]}"
        )


def parse(response: httpx.Response) -> Page:
    reader = _Reader()
    reader.feed(response.text)
    return Page(
        status=response.status_code,
        html=response.text,
        text=" ".join(reader.text),
        forms=reader.forms,
        location=response.headers.get("location"),
    )


class Browser:
    """One visitor: keeps its cookies, fills the CSRF token from the page it came from."""

    def __init__(self, client: httpx.AsyncClient, tasks: set[asyncio.Task[None]]) -> None:
        self.client = client
        self.tasks = tasks  # what the pages started in the background (syncs)

    async def get(self, url: str) -> Page:
        return parse(await self.client.get(url))

    async def submit(self, page_url: str, form_action: str, /, **values: str) -> Page:
        """Open `page_url`, take its form posting to `form_action`, send it with `values`."""
        page = await self.get(page_url)
        assert page.status == 200, (page_url, page.status, page.text[:300])
        form = page.form(form_action)
        return parse(await self.client.post(form_action, data={**form.fields, **values}))

    async def post(self, url: str, data: dict[str, str]) -> Page:
        return parse(await self.client.post(url, data=data))

    async def sign_in(self, email: str, password: str) -> Page:
        signed = await self.submit("/login", "/login", email=email, password=password)
        assert signed.status == 303, signed.text[:300]
        return signed

    async def aclose(self) -> None:
        """Wait for the background work the pages started (a sync holds a database
        connection), then close."""
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.client.aclose()


def browser(
    ctx: Context, *, client_ip: str = "127.0.0.1", base_url: str = "http://test"
) -> Browser:
    app = create_app(ctx.settings, context=ctx)
    app.state.context = ctx  # what the lifespan would set; the workers stay off
    tasks: set[asyncio.Task[None]] = set()
    app.state.background_tasks = tasks
    # A crash answers with the 500 page, as a server would, instead of raising in the test.
    transport = httpx.ASGITransport(app=app, client=(client_ip, 50000), raise_app_exceptions=False)
    client = httpx.AsyncClient(transport=transport, base_url=base_url, timeout=60)
    return Browser(client, tasks)
