"""Prometheus metrics: what an operator graphs and alerts on.

Two kinds, kept in two registries:
- What this process did (syncs, messages, phases, rule evaluations, drafts, webhook
  attempts): counters and histograms in prometheus_client's default registry, next to its
  process and Python collectors. Each process counts its own; Prometheus sums them.
- What is stored (mailboxes by status, webhook deliveries waiting or dead, the oldest one
  waiting, drafts waiting for review): gauges read from the database when /metrics is
  scraped, so every web process reports the same cluster-wide figures. A `radiosilence
  worker` serving only the first kind (RADIOSILENCE_METRICS_PORT) never reports stale zeros.

This module only declares them (it imports nothing of ours, so any floor may count);
app.services.metrics reads the stored state through app.storage.metrics.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

SYNC_PASSES = Counter(
    "radiosilence_sync_passes", "Mailbox sync passes, by outcome (ok or failed).", ["outcome"]
)
SYNC_MESSAGES = Counter("radiosilence_sync_messages", "Messages stored by syncs.")
SYNC_SKIPPED = Counter(
    "radiosilence_sync_skipped_messages", "Messages that could not be read: recorded and skipped."
)
SYNC_PHASE_SECONDS = Counter(
    "radiosilence_sync_phase_seconds",
    "Seconds spent per phase of reading mail (headers, parse, bodies, store, commit); "
    "reading one batch overlaps storing the last.",
    ["phase"],
)
SYNC_SECONDS = Histogram(
    "radiosilence_sync_duration_seconds",
    "Duration of a successful sync pass: reading new mail, then its rules and drafts.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)
THREADS_EVALUATED = Counter(
    "radiosilence_threads_evaluated",
    "Threads the rules decided again, after new mail or when a check fell due.",
)
DRAFTS_CREATED = Counter("radiosilence_drafts_created", "Follow-up drafts composed.")
WEBHOOK_ATTEMPTS = Counter(
    "radiosilence_webhook_attempts",
    "Webhook delivery attempts, by verdict (succeeded, failed, throttled, gone).",
    ["verdict"],
)
WEBHOOK_SECONDS = Histogram(
    "radiosilence_webhook_attempt_seconds",
    "Time from sending a webhook to its answer (or to giving up).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

STORED = CollectorRegistry(auto_describe=True)
MAILBOXES = Gauge(
    "radiosilence_mailboxes",
    "Mailboxes by status (new, syncing, ok, failed).",
    ["status"],
    registry=STORED,
)
DELIVERIES = Gauge(
    "radiosilence_webhook_deliveries",
    "Webhook deliveries not yet delivered, by status (pending, dead).",
    ["status"],
    registry=STORED,
)
OLDEST_PENDING = Gauge(
    "radiosilence_webhook_oldest_pending_seconds",
    "Age of the oldest webhook delivery still pending (0 when none is).",
    registry=STORED,
)
DRAFTS_PENDING = Gauge(
    "radiosilence_drafts_pending",
    "Follow-up drafts waiting for the rep's review.",
    registry=STORED,
)
STORED_UP = Gauge(
    "radiosilence_database_up",
    "1 when the gauges above were just read from the database, 0 when it did not answer.",
    registry=STORED,
)
MAILBOX_STATUSES = ("new", "syncing", "ok", "failed")
