"""Read a Prometheus text exposition the way a scraper does (prometheus_client's own parser)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(exposition: str | bytes) -> Samples:
    """{(sample name, sorted labels): value}: ("radiosilence_mailboxes", (("status", "ok"),))."""
    text = exposition.decode() if isinstance(exposition, bytes) else exposition
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(scraped: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 for a labelled counter never incremented (it is not exposed yet)."""
    return scraped.get((name, tuple(sorted(labels.items()))), 0.0)
