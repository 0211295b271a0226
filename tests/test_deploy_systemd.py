"""The systemd path of docs/deploy.md, followed in order on a fresh PostgreSQL role and database.

Root-only steps (useradd, systemctl) cannot run here; the test checks that the guide has them
in order, then runs what they amount to: the guide's own SQL (with a fresh role and database
name), /etc/comfyportal/env made from deploy/systemd/comfyportal.env.example and read the way
systemd reads an EnvironmentFile, the deploy unit's ExecStart lines in order as that role (not a
superuser), then the web and worker units' commands. The admin logs in, and the worker stops on
SIGTERM to its master within seconds (the unit's KillMode=mixed).
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from django.conf import settings

REPO = Path(__file__).resolve().parent.parent
GUIDE = REPO / "docs" / "deploy.md"
UNITS = REPO / "deploy" / "systemd"
ENV_EXAMPLE = UNITS / "comfyportal.env.example"
SUPERUSER_URL = os.environ.get("CI_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres").rsplit("/", 1)[0]


def systemd_section() -> str:
    text = GUIDE.read_text()
    return text[text.index("## With systemd") : text.index("### Stopping a worker")]


def shell_lines(section: str) -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def read_environment_file(text: str) -> dict[str, str]:
    """What systemd's EnvironmentFile= makes of the file (comments and blank lines skipped)."""
    env = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";")):
            name, _, value = line.partition("=")
            env[name.strip()] = value.strip()
    return env


def unit(name: str) -> dict[str, list[str]]:
    settings_ = {}
    for line in (UNITS / name).read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings_.setdefault(key, []).append(value)
    return settings_


def test_the_guide_has_every_step_of_the_systemd_path_in_order():
    lines = shell_lines(systemd_section())
    expected = [
        "apt-get install -y python3 python3-venv postgresql redis-server nginx-light",
        "useradd --system --home-dir /var/lib/comfyportal",
        "install -d -o comfyportal -g comfyportal -m 755 /var/lib/comfyportal",
        "install -d -o comfyportal -g comfyportal -m 750 /var/lib/comfyportal/media",
        "install -d -o root -g comfyportal -m 750 /etc/comfyportal",
        "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt",
        "CREATE ROLE comfyportal LOGIN PASSWORD",
        "CREATE DATABASE comfyportal OWNER comfyportal",
        "deploy/systemd/comfyportal.env.example /etc/comfyportal/env",
        "cp deploy/systemd/*.service /etc/systemd/system/",
        "systemctl start comfyportal-deploy",
        "systemctl enable --now comfyportal-web@8001 comfyportal-web@8002",
        "systemctl enable --now comfyportal-worker@1 comfyportal-worker@2",
        "cp deploy/nginx/comfyportal.conf /etc/nginx/sites-available/comfyportal",
        "nginx -t && systemctl reload nginx",
    ]
    positions = []
    for step in expected:
        found = [i for i, line in enumerate(lines) if step in line]
        assert found, f"the guide's systemd steps lack: {step}"
        positions.append(found[0])
    assert positions == sorted(positions), "steps out of order"
    # What the units and the env example expect of those steps.
    env = read_environment_file(ENV_EXAMPLE.read_text())
    assert env["VAR_DIR"] == "/var/lib/comfyportal" and env["MEDIA_ROOT"].startswith(env["VAR_DIR"] + "/")
    assert env["DATABASE_URL"].startswith("postgres://comfyportal:") and env["DATABASE_URL"].endswith("/comfyportal")
    assert "@127.0.0.1:" in env["DATABASE_URL"] and env["REDIS_URL"].startswith("redis://127.0.0.1:")
    assert env["DEBUG"] == "0" and env["SERVE_STATIC"] == "0"
    assert int(env["Q_WORKERS"]) >= int(env["JOB_RUNNERS"]) + 1
    for name in ("comfyportal-web@.service", "comfyportal-worker@.service", "comfyportal-deploy.service"):
        service = unit(name)
        assert service["EnvironmentFile"] == ["/etc/comfyportal/env"], name
        assert service["User"] == ["comfyportal"] and service["ReadWritePaths"] == ["/var/lib/comfyportal"], name
    worker = unit("comfyportal-worker@.service")
    assert worker["KillMode"] == ["mixed"] and worker["KillSignal"] == ["SIGTERM"]
    assert float(worker["TimeoutStopSec"][0]) > settings.WORKER_STOP_TIMEOUT + 5


def postgres_superuser():
    import psycopg

    try:
        return psycopg.connect(f"{SUPERUSER_URL}/postgres", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is not reachable at {SUPERUSER_URL}: {exc}")
        pytest.skip(f"PostgreSQL is not reachable at {SUPERUSER_URL}")


@pytest.mark.slow
def test_the_systemd_steps_run_in_order_on_a_fresh_database(tmp_path):
    from tests.harness import _wait_http, free_port

    suffix = secrets.token_hex(4)
    role, password = f"cp_deploy_{suffix}", secrets.token_urlsafe(12)
    superuser = postgres_superuser()
    # Step 4, the guide's own statements, with a fresh role and database.
    statements = re.findall(r'psql -c "([^"]+)"', systemd_section())
    assert len(statements) == 2, statements
    renamed = [
        statement.replace("'change-me-db-password'", f"'{password}'").replace("comfyportal", role)
        for statement in statements
    ]
    processes: list[subprocess.Popen] = []
    try:
        for statement in renamed:
            superuser.execute(statement)
        # Step 5: /etc/comfyportal/env from the example, edited as the guide says.
        env_text = ENV_EXAMPLE.read_text()
        env_text = env_text.replace("comfyportal:change-me-db-password@", f"{role}:{password}@")
        env_text = env_text.replace("127.0.0.1:5432/comfyportal", f"{SUPERUSER_URL.rsplit('@', 1)[1]}/{role}")
        env_text = env_text.replace(
            "SECRET_KEY=change-me-to-60-random-characters", f"SECRET_KEY={secrets.token_urlsafe(60)}"
        )
        env_text = env_text.replace("ADMIN_PASSWORD=change-me-admin-password", f"ADMIN_PASSWORD={password}")
        env_text = env_text.replace("/var/lib/comfyportal", str(tmp_path / "var"))
        env_text = re.sub(r"^REDIS_URL=.*$", f"REDIS_URL={settings.REDIS_URL}", env_text, flags=re.M)
        env_text = re.sub(r"^ALLOWED_HOSTS=.*$", "ALLOWED_HOSTS=127.0.0.1", env_text, flags=re.M)
        env_text += f"SECURE_SSL_REDIRECT=0\nREDIS_NAMESPACE=deploy{suffix}\nJOB_RUNNERS=1\nQ_WORKERS=2\n"
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
        env.update(read_environment_file(env_text))
        (tmp_path / "var" / "media").mkdir(parents=True)  # step 2

        def command(line: str, **values: str) -> list[str]:
            argv = shlex.split(line.replace("%i", values.get("i", "%i")))
            return [sys.executable if argv[0] == "/opt/comfyportal/.venv/bin/python" else argv[0], *argv[1:]]

        def unit_env(name: str) -> dict[str, str]:
            extra = dict(value.split("=", 1) for value in unit(name).get("Environment", []))
            return {**env, **extra}

        # Step 6: the deploy unit's ExecStart lines, in order.
        deploy_env = unit_env("comfyportal-deploy.service")
        for line in unit("comfyportal-deploy.service")["ExecStart"]:
            result = subprocess.run(
                command(line), cwd=REPO, env=deploy_env, capture_output=True, text=True, timeout=300
            )
            assert result.returncode == 0, f"{line}:\n{result.stdout}{result.stderr}"
        assert (tmp_path / "var" / "static" / "admin").is_dir(), "collectstatic filled STATIC_ROOT"

        port = free_port()
        (web_line,) = unit("comfyportal-web@.service")["ExecStart"]
        (worker_line,) = unit("comfyportal-worker@.service")["ExecStart"]
        for line, name, values in (
            (web_line, "comfyportal-web@.service", {"i": str(port)}),
            (worker_line, "comfyportal-worker@.service", {}),
        ):
            processes.append(
                subprocess.Popen(
                    command(line, **values),
                    cwd=REPO,
                    env=unit_env(name),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        web, worker = processes
        _wait_http(f"http://127.0.0.1:{port}/api/workflow-spec/v1.json", web, timeout=60)
        login = httpx.post(
            f"http://127.0.0.1:{port}/api/auth/token",
            json={"username": env["ADMIN_USERNAME"], "password": password},
            headers={"X-Forwarded-Proto": "https"},
            timeout=10,
        )
        assert login.status_code == 200, login.text
        deadline = time.monotonic() + 60
        while len(psutil.Process(worker.pid).children(recursive=True)) < 3:  # sentinel, pusher, monitor, workers
            assert worker.poll() is None and time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.2)
        tree = [psutil.Process(worker.pid), *psutil.Process(worker.pid).children(recursive=True)]
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)  # KillMode=mixed: to the master only
        worker.wait(15)
        _, left = psutil.wait_procs(tree, timeout=1)
        assert not left and time.monotonic() - started < 5, (left, time.monotonic() - started)
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
        superuser.execute(f"DROP DATABASE IF EXISTS {role} WITH (FORCE)")
        superuser.execute(f"DROP ROLE IF EXISTS {role}")
        superuser.close()
