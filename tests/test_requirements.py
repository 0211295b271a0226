"""Runtime and development requirements are split: `make run`, the Dockerfile and the deploy
guide install requirements.txt only, which holds every package the product imports and no test
tool; `make test`/`lint`/`bench` install requirements-dev.txt, which includes it."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PRODUCT = ["comfyportal", "core", "accounts", "nodes", "workflows", "jobs", "webhooks", "usage", "billing"]
DEV_TOOLS = {"pytest", "pytest-django", "pytest-asyncio", "pytest-timeout", "hypothesis", "playwright", "ruff"}
DEV_TOOLS |= {"import-linter", "schemathesis", "pyyaml"}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-r"):
            name, _, version = line.partition("==")
            assert version, f"{path.name}: {line!r} is not an exact pin"
            found[normalized(re.sub(r"\[.*\]", "", name))] = version
    return found


def imported_top_level(packages: list[str]) -> set[str]:
    names = set()
    for package in packages:
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - set(PRODUCT) - {"__future__"}


def test_runtime_holds_every_package_the_product_imports_and_no_test_tool():
    runtime = pins(REPO / "requirements.txt")
    assert not DEV_TOOLS & runtime.keys(), DEV_TOOLS & runtime.keys()
    distributions = packages_distributions()
    for module in sorted(imported_top_level(PRODUCT)):
        owners = {normalized(d) for d in distributions.get(module, [])}
        assert owners & runtime.keys(), (
            f"the product imports {module} ({owners or 'not installed'}), not in requirements.txt"
        )


def test_development_requirements_include_the_runtime_and_add_the_tools():
    text = (REPO / "requirements-dev.txt").read_text()
    assert re.search(r"^-r requirements\.txt$", text, re.M)
    dev = pins(REPO / "requirements-dev.txt")
    assert dev.keys() >= DEV_TOOLS, DEV_TOOLS - dev.keys()
    assert not dev.keys() & pins(REPO / "requirements.txt").keys(), "each pin in one file only"


def make_dry_run(target: str, venv: Path) -> str:
    return subprocess.run(
        ["make", "-n", target, f"VENV={venv}"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout


def test_make_run_installs_the_runtime_and_make_test_adds_the_tools(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("#!/bin/sh\n")
    run = make_dry_run("run", venv)
    assert "-r requirements.txt" in run and "requirements-dev.txt" not in run, run
    (venv / ".installed-run").touch()  # after `make run`
    assert "pip install" not in make_dry_run("run", venv)
    for target in ("test", "lint", "bench"):
        assert "-r requirements-dev.txt" in make_dry_run(target, venv), target  # what run did not install
    (venv / ".installed-dev").touch()  # after `make test`
    assert "pip install" not in make_dry_run("test", venv)
    assert "pip install" not in make_dry_run("run", venv)


def test_the_image_and_the_deploy_guide_install_the_runtime_only():
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    guide = (REPO / "docs" / "deploy.md").read_text()
    assert "pip install -r /app/requirements.txt" in dockerfile
    assert "pip install -r requirements.txt" in guide
    assert "requirements-dev" not in dockerfile
    assert not re.search(r"pip install[^\n]*requirements-dev", guide)
