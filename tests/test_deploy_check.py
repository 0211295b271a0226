"""The production layout in deploy/ is the one the tests run, and settings are production-safe.

docker is not available where the tests run, so the compose file is checked by parsing it:
its services, their shared database/Redis, and their commands, which must be the commands
tests/harness.py (web, worker) and comfyportal/launcher.py (migrate, bootstrap) run. The
slow test then runs those very commands against a scratch database.
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
import types
from pathlib import Path

import pytest
import yaml
from django.conf import settings

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
APP_SERVICES = ("web1", "web2", "worker1", "worker2")
PROD_ONLY_FLAGS = ["--proxy-headers"]  # behind nginx: client address from X-Forwarded-For


# --- helpers -----------------------------------------------------------------------------------


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def command_lines(service: dict) -> list[list[str]]:
    """A service's command as argv lists: `sh -c "a && b && exec c"` becomes [a, b, c]."""
    command = service["command"]
    if isinstance(command, str):
        command = shlex.split(command)
    if command[:2] == ["sh", "-c"]:
        lines = [shlex.split(part) for part in command[2].split("&&")]
        return [line[1:] if line[:1] == ["exec"] else line for line in lines]
    return [command]


def normalize(argv: list[str], *, drop: tuple[str, ...] = ()) -> list[str]:
    """Same command whatever the interpreter path, address, port and manage.py path are."""
    out: list[str] = []
    skip_value = False
    for i, arg in enumerate(argv):
        if skip_value:
            skip_value = False
            out.append("<value>")
            continue
        if arg in drop:
            continue
        if i == 0 and (arg == "python" or arg == sys.executable or Path(arg).name.startswith("python")):
            arg = "python"
        elif arg.endswith("manage.py"):
            arg = "manage.py"
        if arg in ("-b", "-p"):
            skip_value = True
        out.append(arg)
    return out


def harness_commands(monkeypatch) -> dict[str, list[str]]:
    """The argv lists tests/harness.py starts, captured without starting anything."""
    from tests import harness

    started: list[list[str]] = []
    monkeypatch.setattr(harness.Stack, "_popen", lambda self, args, log_name: started.append(list(args)) or None)
    monkeypatch.setattr(harness, "_wait_http", lambda url, process, timeout=30: None)
    stack = harness.Stack(nodes=0)
    stack.start_web(0)
    stack.start_worker(0)
    web, worker = started
    return {"web": web, "worker": worker}


def launcher_commands(monkeypatch) -> list[list[str]]:
    """The argv lists `make run` (comfyportal/launcher.py) runs, captured without running them."""
    from comfyportal import launcher

    calls: list[list[str]] = []

    class FakeProcess:
        returncode = 0

        def __init__(self, args, **kwargs):
            calls.append(list(args))

        def poll(self):
            return 0

        def wait(self, timeout=None):
            return 0

        def send_signal(self, signum):
            pass

    fake = types.SimpleNamespace(
        run=lambda args, **kw: calls.append(list(args)), Popen=FakeProcess, TimeoutExpired=subprocess.TimeoutExpired
    )
    monkeypatch.setattr(launcher, "subprocess", fake)
    monkeypatch.setattr(launcher, "signal_group", lambda process, signum: None)
    monkeypatch.setenv("REDIS_URL", settings.REDIS_URL)  # no embedded Redis
    launcher.main([])  # restores the signal handlers it installs
    return calls


def production_env(**extra: str) -> dict[str, str]:
    """Only what a production host sets, plus PATH/HOME and the test database/Redis."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(60),
        "ALLOWED_HOSTS": "portal.example.com",
    }
    for name in ("REDIS_URL", "DATABASE_URL"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    env.update(extra)
    return env


# --- docker-compose.yml ---------------------------------------------------------------------------


def test_compose_has_the_seven_services():
    services = compose()["services"]
    assert sorted(services) == sorted(["postgres", "redis", "web1", "web2", "worker1", "worker2", "nginx"])
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    assert services["nginx"]["image"].startswith("nginx:")
    for name in APP_SERVICES:
        assert services[name]["build"]["dockerfile"] == "deploy/Dockerfile"
        assert services[name]["build"]["context"] == ".."


def test_every_app_instance_shares_one_database_redis_and_media():
    services = compose()["services"]
    envs = [services[name]["environment"] for name in APP_SERVICES]
    database_urls = {env["DATABASE_URL"] for env in envs}
    redis_urls = {env["REDIS_URL"] for env in envs}
    assert len(database_urls) == 1 and len(redis_urls) == 1
    (database_url,) = database_urls
    (redis_url,) = redis_urls
    assert database_url.startswith("postgres://") and "@postgres:5432/" in database_url
    assert redis_url.startswith("redis://redis:6379/")
    for name in APP_SERVICES:
        env = services[name]["environment"]
        assert env["SERVE_STATIC"] == "0", f"{name}: nginx serves /static/"
        media = [v for v in services[name]["volumes"] if v.split(":")[1] == env["MEDIA_ROOT"]]
        assert media == ["media:/var/lib/comfyportal/media"], f"{name}: MEDIA_ROOT must be the shared volume"
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == deps["redis"]["condition"] == "service_healthy"


def test_two_web_and_two_worker_instances_run_the_harness_commands(monkeypatch):
    services = compose()["services"]
    harness = harness_commands(monkeypatch)
    expected_web = normalize(harness["web"])
    expected_worker = normalize(harness["worker"])
    assert expected_web == ["python", "-m", "daphne", "-b", "<value>", "-p", "<value>", "comfyportal.asgi:application"]
    assert expected_worker == ["python", "manage.py", "qcluster"]

    for name in ("web1", "web2"):
        serve = command_lines(services[name])[-1]
        # The harness command, plus only --proxy-headers (and nothing else) in production.
        assert [a for a in serve if a in PROD_ONLY_FLAGS] == PROD_ONLY_FLAGS, f"{name}: {serve}"
        assert normalize(serve, drop=tuple(PROD_ONLY_FLAGS)) == expected_web, f"{name}: {serve}"
        assert serve[serve.index("-b") + 1] == "0.0.0.0" and serve[serve.index("-p") + 1] == "8000"
    for name in ("worker1", "worker2"):
        assert [normalize(line) for line in command_lines(services[name])] == [expected_worker], name


def test_web1_runs_the_launchers_deploy_steps_first(monkeypatch):
    """migrate and bootstrap exactly as `make run` runs them, plus collectstatic, then daphne."""
    launcher = [normalize(argv) for argv in launcher_commands(monkeypatch)]
    migrate = ["python", "manage.py", "migrate", "--noinput"]
    bootstrap = ["python", "manage.py", "bootstrap"]
    assert migrate in launcher and bootstrap in launcher, launcher

    steps = [normalize(line) for line in command_lines(compose()["services"]["web1"])]
    assert steps[:3] == [migrate, ["python", "manage.py", "collectstatic", "--noinput"], bootstrap]
    assert steps[3][:3] == ["python", "-m", "daphne"]
    # Nothing else runs the deploy steps: the others wait for web1 to be healthy.
    services = compose()["services"]
    for name in ("web2", "worker1", "worker2"):
        assert len(command_lines(services[name])) == 1
        assert services[name]["depends_on"]["web1"]["condition"] == "service_healthy"


def test_dockerfile_builds_the_image_the_commands_expect():
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\s*$", text, re.M)
    assert re.search(r"pip install .*-r /app/requirements\.txt", text)
    assert not re.search(r"^ENTRYPOINT", text, re.M), "an entrypoint would change every compose command"
    assert re.search(r"^WORKDIR /app$", text, re.M), "`python manage.py` runs from the code directory"


def test_nginx_config_matches_the_layout():
    """The container's site (deploy/nginx/compose.conf; tests/test_nginx.py checks that the
    systemd one, deploy/nginx/comfyportal.conf, differs only in its upstream)."""
    conf = (DEPLOY / "nginx" / "compose.conf").read_text()
    conf_no_comments = re.sub(r"#[^\n]*", "", conf)
    upstream = re.search(r"upstream\s+(\w+)\s*\{(.*?)\}", conf_no_comments, re.S)
    servers = re.findall(r"^\s*server\s+([\w.:-]+)", upstream.group(2), re.M)
    assert servers == ["web1:8000", "web2:8000"]

    ws = re.search(r"location /ws/ \{(.*?)\}", conf_no_comments, re.S).group(1)
    assert "proxy_http_version 1.1;" in ws
    assert re.search(r"proxy_set_header Upgrade \$http_upgrade;", ws)
    assert re.search(r'proxy_set_header Connection "upgrade";', ws)
    assert int(re.search(r"proxy_read_timeout (\d+)s;", ws).group(1)) >= 3600
    assert f"proxy_pass http://{upstream.group(1)};" in ws

    size = re.search(r"client_max_body_size (\d+)m;", conf_no_comments)
    allowed = int(size.group(1)) * 1024 * 1024
    assert settings.UPLOAD_MAX_BYTES <= allowed <= settings.UPLOAD_MAX_BYTES + 1024 * 1024

    static = re.search(r"location /static/ \{\s*alias ([^;]+);", conf_no_comments).group(1)
    web_env = compose()["services"]["web1"]["environment"]
    assert static.rstrip("/") == f"{web_env['VAR_DIR']}/static"  # STATIC_ROOT = VAR_DIR/static
    assert str(settings.STATIC_ROOT) == str(Path(settings.VAR_DIR) / "static")
    assert "static:/var/lib/comfyportal/static:ro" in compose()["services"]["nginx"]["volumes"]
    # Media is served only through auth-checked views: nginx may hold it only in an `internal`
    # location, which the app reaches with X-Accel-Redirect after its owner check.
    media_locations = [b for b in re.findall(r"location [^{]+\{([^}]*)\}", conf_no_comments) if "/media" in b]
    assert conf_no_comments.count("/media") == len(media_locations) == 1
    assert all("internal;" in body for body in media_locations)

    proxied = re.findall(r"location ([^{]+)\{([^}]*proxy_pass[^}]*)\}", conf_no_comments)
    assert len(proxied) == 3, "/ws/, /metrics and /"
    for place, block in proxied:
        assert "proxy_set_header X-Forwarded-Proto $scheme;" in block, place
        assert "proxy_set_header X-Forwarded-For $remote_addr;" in block, place
        assert "proxy_set_header Host $host;" in block, place
    assert settings.SECURE_PROXY_SSL_HEADER == ("HTTP_X_FORWARDED_PROTO", "https")


def test_nginx_forwards_metrics_only_from_this_host():
    """/metrics names nodes and workflows: nginx keeps it from the internet even with a token."""
    conf_no_comments = re.sub(r"#[^\n]*", "", (DEPLOY / "nginx" / "comfyportal.conf").read_text())
    block = re.search(r"location = /metrics \{(.*?)\}", conf_no_comments, re.S).group(1)
    rules = re.findall(r"^\s*(allow|deny)\s+([^;]+);", block, re.M)
    assert rules[-1] == ("deny", "all")
    assert {address for rule, address in rules if rule == "allow"} <= {"127.0.0.1", "::1"}


def test_systemd_units_run_the_same_commands(monkeypatch):
    harness = harness_commands(monkeypatch)
    units = DEPLOY / "systemd"

    def exec_starts(name: str) -> list[list[str]]:
        text = (units / name).read_text()
        return [shlex.split(line.split("=", 1)[1]) for line in text.splitlines() if line.startswith("ExecStart=")]

    (web,) = exec_starts("comfyportal-web@.service")
    assert normalize(web, drop=tuple(PROD_ONLY_FLAGS)) == normalize(harness["web"])
    assert web[web.index("-p") + 1] == "%i", "templated by port"
    (worker,) = exec_starts("comfyportal-worker@.service")
    assert normalize(worker) == normalize(harness["worker"])
    deploy = [normalize(argv) for argv in exec_starts("comfyportal-deploy.service")]
    web1 = [normalize(line) for line in command_lines(compose()["services"]["web1"])]
    assert deploy == web1[:3]


def test_env_example_covers_what_production_needs():
    text = (DEPLOY / ".env.example").read_text()
    names = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, re.M))
    for name in (
        "DEBUG",
        "SECRET_KEY",
        "ALLOWED_HOSTS",
        "CSRF_TRUSTED_ORIGINS",
        "POSTGRES_PASSWORD",
        "ADMIN_USERNAME",
        "ADMIN_PASSWORD",
        "SERVE_STATIC",
        "PORTAL_HOST",
        "JOB_RUNNERS",
        "Q_WORKERS",
    ):
        assert name in names, name
    values = dict(re.findall(r"^([A-Z][A-Z0-9_]+)=(.*)$", text, re.M))
    assert values["DEBUG"] == "0"
    assert int(values["Q_WORKERS"]) >= int(values["JOB_RUNNERS"]) + 1


# --- settings in production -----------------------------------------------------------------------


@pytest.mark.parametrize("preload", [None, "0", "1"], ids=["preload default", "preload off", "preload on"])
def test_check_deploy_passes_with_only_the_required_settings(tmp_path, preload):
    """Also with SECURE_HSTS_PRELOAD either way: the deploy guide says to turn it on only to submit
    the domain to the preload list, and promises that this check passes."""
    extra = {"SECURE_HSTS_PRELOAD": preload} if preload is not None else {}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=production_env(VAR_DIR=str(tmp_path), **extra),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "/metrics is off (404) until METRICS_TOKEN is set." in result.stdout + result.stderr


def test_deploy_check_says_metrics_are_off_until_a_token_is_set(settings):
    from django.core import checks

    def metrics_messages():
        found = checks.run_checks(include_deployment_checks=True, tags=[checks.Tags.security])
        return [message.msg for message in found if message.id == "comfyportal.I001"]

    settings.METRICS_OPEN_WITHOUT_TOKEN = False
    settings.METRICS_TOKEN = ""
    assert metrics_messages() == ["/metrics is off (404) until METRICS_TOKEN is set."]
    settings.METRICS_TOKEN = "s3cret"
    assert metrics_messages() == []


def test_debug_off_without_secret_key_refuses_to_start(tmp_path):
    env = production_env(VAR_DIR=str(tmp_path))
    del env["SECRET_KEY"]
    result = subprocess.run(
        [sys.executable, "-c", "import comfyportal.settings"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "django.core.exceptions.ImproperlyConfigured: SECRET_KEY must be set when DEBUG is off." in result.stderr
    assert not (tmp_path / "secret_key").exists(), "no key may be generated silently in production"


# --- the compose commands, run for real ----------------------------------------------------------


@pytest.mark.slow
def test_compose_commands_run(tmp_path):
    """web1's deploy steps, a web and a worker, run from the compose file against a scratch DB."""
    from tests.harness import _wait_http, free_port

    services = compose()["services"]
    env = production_env(
        DEBUG="0",
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        SERVE_STATIC="0",
        DATABASE_URL=f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
        REDIS_URL=settings.REDIS_URL,
        VAR_DIR=str(tmp_path / "var"),
        MEDIA_ROOT=str(tmp_path / "var" / "media"),
        ADMIN_USERNAME="deployadmin",
        ADMIN_PASSWORD=secrets.token_urlsafe(16),
        JOB_RUNNERS="0",  # start no runner tasks in the shared test Redis
        DJANGO_SETTINGS_MODULE="comfyportal.settings",
        PYTHONUNBUFFERED="1",
    )

    def localize(argv: list[str]) -> list[str]:
        argv = [sys.executable, *argv[1:]] if argv[0] == "python" else argv
        if "-b" in argv:
            argv[argv.index("-b") + 1] = "127.0.0.1"
            argv[argv.index("-p") + 1] = str(port)
        return argv

    port = free_port()
    *steps, serve = command_lines(services["web1"])
    for step in steps:
        result = subprocess.run(localize(step), cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, f"{step}: {result.stdout}{result.stderr}"
    assert (tmp_path / "var" / "static" / "admin").is_dir(), "collectstatic filled STATIC_ROOT"
    # bootstrap is idempotent: a second deploy changes nothing and does not fail.
    again = subprocess.run(localize(steps[-1]), cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stderr

    processes = []
    try:
        for argv in (localize(serve), localize(command_lines(services["worker1"])[0])):
            processes.append(
                subprocess.Popen(
                    argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
                )
            )
        web, worker = processes
        _wait_http(f"http://127.0.0.1:{port}/api/workflow-spec/v1.json", web, timeout=60)
        import httpx

        login = httpx.post(
            f"http://127.0.0.1:{port}/api/auth/token",
            json={"username": "deployadmin", "password": env["ADMIN_PASSWORD"]},
            timeout=10,
        )
        assert login.status_code == 200, login.text
        workflows = httpx.get(
            f"http://127.0.0.1:{port}/api/workflows",
            timeout=10,
            headers={"Authorization": f"Bearer {login.json()['access']}"},
        )
        assert workflows.status_code == 200 and workflows.json(), "bootstrap imported the bundled workflows"
        time.sleep(2)
        assert worker.poll() is None, worker.stderr.read().decode() if worker.stderr else "qcluster exited"
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
