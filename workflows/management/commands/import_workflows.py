"""Import bundled workflows: every folder with workflow.json + spec.json. Idempotent."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management import BaseCommand, CommandError

from core.errors import DomainError
from workflows import services
from workflows.models import Workflow


class Command(BaseCommand):
    help = "Import workflow + spec pairs from a folder (a version already present is skipped)."

    def add_arguments(self, parser):
        parser.add_argument("folder", type=Path)

    def handle(self, *args, folder: Path, **options):
        if not folder.is_dir():
            raise CommandError(f"{folder} is not a folder")
        imported = skipped = 0
        for workflow_path in sorted(folder.glob("*/workflow.json")):
            spec_path = workflow_path.with_name("spec.json")
            if not spec_path.exists():
                self.stderr.write(f"skipped {workflow_path.parent.name}: no spec.json")
                continue
            spec = json.loads(spec_path.read_text())
            if Workflow.objects.filter(slug=spec.get("slug"), version=spec.get("version")).exists():
                skipped += 1
                continue
            try:
                services.upload_workflow(workflow_raw=workflow_path.read_bytes(), spec_raw=spec_path.read_bytes())
            except DomainError as exc:
                raise CommandError(f"{workflow_path.parent.name}: {exc.detail}") from exc
            imported += 1
        self.stdout.write(f"Imported {imported} workflow(s), {skipped} already present.")
