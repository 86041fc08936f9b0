"""Prometheus metrics, one CollectorRegistry per app instance (tests build many apps without clashes)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from bot.domain import Usage

_LATENCY_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class Metrics:
    """The bot's metric objects; the GitHub and model clients report through the helper methods."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.deliveries = Counter(
            "bot_webhook_deliveries", "Webhook deliveries by event and outcome", ["event", "outcome"], registry=r
        )
        self.jobs = Gauge("bot_jobs", "Jobs in the store by state (read at scrape time)", ["state"], registry=r)
        self.jobs_finished = Counter("bot_jobs_finished", "Job attempts by kind and outcome", ["kind", "outcome"],
                                     registry=r)
        self.job_wait = Histogram("bot_job_wait_seconds", "Time from enqueue to a worker picking the job up",
                                  ["kind"], buckets=_LATENCY_BUCKETS, registry=r)
        self.job_run = Histogram("bot_job_run_seconds", "Time a worker spent on one job attempt", ["kind"],
                                 buckets=_LATENCY_BUCKETS, registry=r)
        self.model_tokens = Counter("bot_model_tokens", "Model tokens by model and kind", ["model", "kind"],
                                    registry=r)
        self.model_cost = Counter("bot_model_cost_usd", "Model cost in US dollars", ["model"], registry=r)
        self.github_calls = Counter("bot_github_api_calls", "GitHub API calls by method and status",
                                    ["method", "status"], registry=r)
        self.github_rate_remaining = Gauge("bot_github_rate_limit_remaining",
                                           "GitHub rate limit remaining, as last reported", ["resource"], registry=r)

    def delivery(self, event: str, outcome: str) -> None:
        """Count one webhook delivery."""
        self.deliveries.labels(event=event or "unknown", outcome=outcome).inc()

    def set_job_counts(self, counts: Mapping[str, int]) -> None:
        """Publish job counts by state (all known states, zeros included)."""
        from bot.store.types import JobState

        for state in JobState:
            self.jobs.labels(state=state.value).set(counts.get(state.value, 0))

    def model_usage(self, model: str, usage: Usage, cost_usd: float) -> None:
        """Add one model call's (or run's) tokens and cost."""
        for kind, count in (
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
            ("cache_read", usage.cache_read_input_tokens),
            ("cache_write", usage.cache_creation_input_tokens),
        ):
            self.model_tokens.labels(model=model, kind=kind).inc(count)
        self.model_cost.labels(model=model).inc(cost_usd)

    def github_call(self, method: str, status: int, remaining: int | None = None, resource: str = "core") -> None:
        """Count one GitHub API call, and record the rate-limit remaining it reported."""
        self.github_calls.labels(method=method.upper(), status=str(status)).inc()
        if remaining is not None:
            self.github_rate_remaining.labels(resource=resource).set(remaining)

    def render(self) -> bytes:
        """The registry in Prometheus text format."""
        return bytes(generate_latest(self.registry))
