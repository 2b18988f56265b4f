"""HTML mail -> plain text, with quoted history marked by "> " as a text client would.

Mail clients put the quoted original in <blockquote> or in a container they name (Gmail's
gmail_quote, Outlook's divRplyFwdMsg, Yahoo's yahoo_quoted …); marking those lines lets one
reply-text reader serve both plain and HTML mail.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Class or id fragments of the containers clients wrap quoted or forwarded mail in.
_QUOTE_MARKERS = (
    "gmail_quote",
    "yahoo_quoted",
    "divrplyfwdmsg",
    "appendonsend",
    "protonmail_quote",
    "zmail_extra",
    "outlookmessageheader",
    "mail_android_quote",
)
_BLOCK_TAGS = frozenset(
    {"p", "div", "br", "tr", "li", "ul", "ol", "table", "blockquote", "hr", "pre"}
    | {"h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "header", "footer"}
)
_SKIP_TAGS = frozenset({"script", "style", "head", "title", "template"})
_SPACES_RE = re.compile(r"[ \t\u00a0\u200b]+")
MAX_HTML_CHARS = 131_072


def html_to_text(html: str) -> str:
    """Readable text of an HTML body; lines inside quote containers start with "> "."""
    parser = _TextParser()
    try:
        parser.feed(html[:MAX_HTML_CHARS])
        parser.close()
    except Exception:  # html.parser is lenient; anything it still chokes on ends the text
        parser.flush_line()
    return parser.text()


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.line: list[str] = []
        self.line_quoted = False
        self.skip_depth = 0
        self.depth: dict[str, int] = {}
        self.quotes: list[tuple[str, int]] = []  # (tag, its depth when the quote opened)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self.skip_depth += 1
            return
        if tag in _BLOCK_TAGS:
            self.flush_line()
        if tag in {"br", "hr", "img", "meta", "input", "link", "wbr"}:
            return  # void elements never close
        self.depth[tag] = self.depth.get(tag, 0) + 1
        if tag == "blockquote" or _names_quote(attrs):
            self.quotes.append((tag, self.depth[tag]))

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skip_depth = max(0, self.skip_depth - 1)
            return
        if tag in _BLOCK_TAGS:
            self.flush_line()
        level = self.depth.get(tag, 0)
        if level == 0:
            return
        while self.quotes and self.quotes[-1][0] == tag and self.quotes[-1][1] >= level:
            self.quotes.pop()
        self.depth[tag] = level - 1

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        if not self.line and data.strip():
            self.line_quoted = bool(self.quotes)
        self.line.append(data.replace("\r", " ").replace("\n", " "))

    def flush_line(self) -> None:
        text = _SPACES_RE.sub(" ", "".join(self.line)).strip()
        if text or (self.lines and self.lines[-1]):
            self.lines.append(f"> {text}" if text and self.line_quoted else text)
        self.line = []
        self.line_quoted = False

    def text(self) -> str:
        self.flush_line()
        return "\n".join(self.lines).strip()


def _names_quote(attrs: list[tuple[str, str | None]]) -> bool:
    for name, value in attrs:
        if name in {"class", "id"} and value:
            lowered = value.lower()
            if any(marker in lowered for marker in _QUOTE_MARKERS):
                return True
        if name == "type" and value == "cite":
            return True
    return False
