"""What every benchmark script does first: a PostgreSQL database of its own, then Django."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# One database per checkout, so benchmarks run from two checkouts on one machine never drop each other's.
DEFAULT_DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/comfyportal_bench_{REPO.name.replace('-', '_')}"


def add_database_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))


def prepare_database(url: str) -> None:
    """A fresh PostgreSQL database for each run, migrated."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=REPO,
        check=True,
        env={**os.environ, "DATABASE_URL": url},
    )


def setup(database_url: str) -> None:
    """Point this process at a fresh benchmark database (and Redis) and start Django."""
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/5")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "comfyportal.settings")
    prepare_database(database_url)
    import django

    django.setup()


def runs_table(rows, results: list[dict]) -> str:
    """A Markdown table: a row per (metric name, formatter of one run's result), a column per run."""
    width = max(len(name) for name, _ in rows)
    lines = [
        "| " + "metric".ljust(width) + " | " + " | ".join(f"run {i + 1}" for i in range(len(results))) + " |",
        "|" + "-" * (width + 2) + "|" + "|".join("---" for _ in results) + "|",
    ]
    for name, fmt in rows:
        lines.append("| " + name.ljust(width) + " | " + " | ".join(fmt(r) for r in results) + " |")
    return "\n".join(lines)
