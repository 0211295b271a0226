"""ComfyUI's official workflow templates (the pinned comfyui-workflow-templates-json) as a test.

Every template is converted and its prompt checked by the test ComfyUI's validator (model-file
names aside); ``python -m bench.ui_corpus --details`` prints the same report with every case.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.ui_corpus import Outcome, run, summary, table, template_files

DOC = Path(__file__).resolve().parents[2] / "docs" / "workflow-spec.md"


@pytest.fixture(scope="module")
def outcomes() -> list[Outcome]:
    return run()


def test_the_pinned_package_ships_its_templates():
    assert len(template_files()) > 600


def test_at_least_95_percent_of_built_in_only_templates_become_valid_prompts(outcomes):
    s = summary(outcomes)
    assert s["tried"] == len(template_files())
    assert s["built_in_only"] >= 200
    assert s["valid"] >= 0.95 * s["built_in_only"], table(outcomes)


def test_no_converted_value_differs_from_what_the_template_saved_by_name(outcomes):
    s = summary(outcomes)
    assert s["compared"] > 300  # the check is not vacuous
    assert [w for o in outcomes for w in o.wrong] == []


def test_every_refusal_names_its_cause(outcomes):
    for o in outcomes:
        if o.status in ("needs", "refused", "invalid"):
            assert o.reason.strip(), o.name
        if o.status == "needs":
            assert o.missing and all(o.missing.values()), o.name
            assert all(cls in o.reason for cls in o.missing), o.name
        if o.status == "refused":
            assert "node " in o.reason or "subgraph" in o.reason, o.reason


def test_the_drafted_spec_of_every_valid_template_passes_upload_validation(outcomes):
    failures = [(o.name, o.draft_reason) for o in outcomes if o.status == "valid" and not o.draft_ok]
    assert failures == []


def test_the_table_in_the_docs_is_current(outcomes):
    assert table(outcomes) in DOC.read_text(encoding="utf-8"), (
        "regenerate the table in docs/workflow-spec.md with: python -m bench.ui_corpus"
    )
