"""System checks of the site's own settings, run by `manage.py check --deploy`."""

from __future__ import annotations

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def metrics_need_a_token(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Say that /metrics answers 404 in production until METRICS_TOKEN is set.

    An Info, not a Warning: 404 is the safe default, so a deploy without monitoring still passes
    `check --deploy --fail-level WARNING`.
    """
    if settings.METRICS_TOKEN or settings.METRICS_OPEN_WITHOUT_TOKEN:
        return []
    return [
        checks.Info(
            "/metrics is off (404) until METRICS_TOKEN is set.",
            hint="Set METRICS_TOKEN and scrape with `Authorization: Bearer <METRICS_TOKEN>`.",
            id="comfyportal.I001",
        )
    ]
