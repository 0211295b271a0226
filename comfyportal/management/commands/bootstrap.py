"""Idempotent start-up steps run by `make run` after migrate (safe to run on every start)."""

from __future__ import annotations

import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import BaseCommand, call_command


class Command(BaseCommand):
    help = "Create the first admin, import bundled workflows, register COMFY_NODES, upsert schedules."

    def handle(self, *args, **options):
        self.ensure_admin()
        self.import_workflows()
        self.register_nodes()
        self.upsert_schedules()

    def ensure_admin(self) -> None:
        User = get_user_model()
        if User.objects.filter(role="ADMIN").exists():
            return
        username = os.environ.get("ADMIN_USERNAME", "admin")
        password = os.environ.get("ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        user = User(username=username, role="ADMIN", email=os.environ.get("ADMIN_EMAIL", ""))
        user.set_password(password)
        user.save()
        if os.environ.get("ADMIN_PASSWORD"):
            self.stdout.write(f"Created admin '{username}' with the password from ADMIN_PASSWORD.")
        else:
            self.stdout.write(
                self.style.WARNING(
                    f"Created admin '{username}' with password '{password}' (shown once; change it in /admin/)."
                )
            )

    def import_workflows(self) -> None:
        from workflows.models import Workflow

        if Workflow.objects.exists():
            return
        examples = settings.BASE_DIR / "examples" / "workflows"
        if examples.is_dir():
            call_command("import_workflows", str(examples), stdout=self.stdout)

    def register_nodes(self) -> None:
        from nodes.services import register_demo_nodes, register_nodes_from_urls

        created = register_nodes_from_urls(settings.COMFY_NODES)
        for node in created:
            self.stdout.write(f"Registered node {node.name} at {node.base_url}.")
        if settings.DEMO_NODES:
            for node in register_demo_nodes(settings.DEMO_NODES):
                self.stdout.write(f"Demo node {node.name} at {node.base_url}.")

    def upsert_schedules(self) -> None:
        from billing.schedules import upsert_schedules as upsert_billing_schedules
        from jobs.schedules import upsert_schedules
        from webhooks.schedules import upsert_schedules as upsert_webhook_schedules

        upsert_schedules()
        upsert_webhook_schedules()
        upsert_billing_schedules()
