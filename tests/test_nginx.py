"""The shipped nginx site under Debian's own nginx (apt's nginx-light, installed if missing).

`nginx -t` on deploy/nginx/comfyportal.conf included from Debian's stock /etc/nginx/nginx.conf,
as the deploy guide installs it; then nginx runs that configuration: /static/ answers carry one
Cache-Control header and `nosniff`, and a WebSocket URL's token stays out of the access log.
deploy/nginx/compose.conf (the container's) must differ from it only in the upstream.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.harness import free_port

REPO = Path(__file__).resolve().parent.parent
SITE = REPO / "deploy" / "nginx" / "comfyportal.conf"
COMPOSE_SITE = REPO / "deploy" / "nginx" / "compose.conf"
NGINX = Path("/usr/sbin/nginx")
STOCK_CONF = Path("/etc/nginx/nginx.conf")


def ensure_nginx() -> Path:
    """Debian's nginx (apt), installed when missing; missing under CI=true is a failure."""
    if not NGINX.exists():
        apt = shutil.which("apt-get")
        sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = [*sudo, "apt-get", "install", "-y", "--no-install-recommends", "nginx-light"]
        if apt and subprocess.run(install, env=env, capture_output=True).returncode != 0:
            subprocess.run([*sudo, "apt-get", "update"], env=env, capture_output=True)
            subprocess.run(install, env=env, capture_output=True)
    if not NGINX.exists() or not STOCK_CONF.exists():
        message = "Debian's nginx is missing and `apt-get install nginx-light` did not install it"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return NGINX


def site_body(path: Path) -> str:
    """The file from its upstream on (the header comment differs), upstream servers blanked."""
    text = path.read_text()
    text = text[text.index("upstream comfyportal_web") :]
    return re.sub(r"^\s*server\s+[\w.:]+\s+max_fails[^\n]*\n", "", text, flags=re.M)


def test_the_container_site_differs_only_in_its_upstream():
    assert site_body(COMPOSE_SITE) == site_body(SITE)
    servers = re.findall(r"^\s*server\s+([\w.:]+)\s+max_fails", SITE.read_text(), re.M)
    assert servers == ["127.0.0.1:8001", "127.0.0.1:8002"], "the comfyportal-web@8001/@8002 units"


def test_the_site_has_only_directives_allowed_in_http():
    """A site file: no main-context directives, no /dev/stdout (fails under Debian's service),
    no `http2 on;` (nginx >= 1.25.1 only)."""
    text = re.sub(r"#[^\n]*", "", SITE.read_text())
    for directive in ("worker_processes", "events", "http", "user", "pid", "daemon"):
        assert not re.search(rf"^\s*{directive}\b", text, re.M), directive
    assert not re.search(r"^\s*http2\s+on\s*;", text, re.M)
    assert "/dev/stdout" not in text and "/dev/stderr" not in text


def debian_config(tmp: Path, *, run: bool) -> Path:
    """Debian's stock nginx.conf in `tmp`, including the shipped site (with a self-signed
    certificate) where it includes sites-enabled/, its pid and logs moved into `tmp`. With
    `run`, it listens on free local ports and serves a static folder under `tmp`."""
    (tmp / "log").mkdir()
    (tmp / "certs").mkdir()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=portal.example.com"]
        + ["-keyout", str(tmp / "certs" / "privkey.pem"), "-out", str(tmp / "certs" / "fullchain.pem")],
        check=True,
        capture_output=True,
    )
    site = SITE.read_text().replace("/etc/nginx/certs/", f"{tmp}/certs/")
    stock = STOCK_CONF.read_text()
    assert "include /etc/nginx/sites-enabled/*;" in stock
    stock = stock.replace("include /etc/nginx/sites-enabled/*;", f"include {tmp}/sites-enabled/*;")
    stock = re.sub(r"^pid [^;]+;", f"pid {tmp}/nginx.pid;", stock, flags=re.M)
    if run:
        tmp.chmod(0o755)
        (tmp / "static").mkdir()
        (tmp / "static" / "app.css").write_text("body { color: black; }\n")
        site = site.replace("alias /var/lib/comfyportal/static/;", f"alias {tmp}/static/;")
        site = re.sub(r"^\s*listen \[::\][^\n]*\n", "", site, flags=re.M)
        site = site.replace("listen 80;", f"listen 127.0.0.1:{free_port()};")
        site = site.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{free_port()} ssl http2;")
        site = re.sub(r"server 127\.0\.0\.1:800[12]", f"server 127.0.0.1:{free_port()}", site)  # nobody there
        if os.geteuid() == 0:  # the workers must read the test's folder
            stock = re.sub(r"^user [^;]+;", "user root;", stock, flags=re.M)
    (tmp / "sites-enabled").mkdir()
    (tmp / "sites-enabled" / "comfyportal").write_text(site.replace("/var/log/nginx/", f"{tmp}/log/"))
    conf = tmp / "nginx.conf"
    conf.write_text(stock.replace("/var/log/nginx/", f"{tmp}/log/"))
    return conf


def test_nginx_t_passes_with_the_site_in_debians_stock_config(tmp_path):
    nginx = ensure_nginx()
    conf = debian_config(tmp_path, run=False)
    result = subprocess.run([str(nginx), "-t", "-c", str(conf)], capture_output=True, text=True)
    version = subprocess.run([str(nginx), "-v"], capture_output=True, text=True).stderr.strip()
    print(f"\n{version}: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
    warnings = [line for line in result.stderr.splitlines() if "[warn]" in line and '"user" directive' not in line]
    assert not warnings, warnings


def test_nginx_serves_static_with_one_cache_header_and_logs_no_websocket_token(tmp_path):
    nginx = ensure_nginx()
    conf = debian_config(tmp_path, run=True)
    https = int(
        re.search(r"listen 127\.0\.0\.1:(\d+) ssl", (tmp_path / "sites-enabled" / "comfyportal").read_text())[1]
    )
    process = subprocess.Popen(
        [str(nginx), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        with httpx.Client(base_url=f"https://127.0.0.1:{https}", verify=False, timeout=5) as client:
            headers = {"Host": "portal.example.com"}
            for _ in range(100):
                try:
                    static = client.get("/static/app.css", headers=headers)
                    break
                except httpx.ConnectError:
                    assert process.poll() is None, process.stdout.read().decode()
                    time.sleep(0.05)
            assert static.status_code == 200, static.text
            assert static.headers.get_list("cache-control") == ["public, max-age=604800"]
            assert static.headers["x-content-type-options"] == "nosniff"
            assert static.headers["content-type"].startswith("text/css")

            socket = client.get("/ws/jobs/?token=secret.jwt.value", headers=headers)
            assert socket.status_code == 502  # no web instance in this test: proxied, then logged
            page = client.get("/jobs/?page=2", headers=headers)
            assert page.status_code == 502
    finally:
        process.terminate()
        process.wait(10)
    log = (tmp_path / "log" / "access.log").read_text()
    assert '"GET /ws/jobs/ HTTP/' in log, log
    assert "secret.jwt.value" not in log
    assert '"GET /jobs/?page=2 HTTP/' in log, "other locations keep the whole request line"
    assert "/static/" not in log
