"""Fill the new User.storage_used from the files already stored (afterwards it is kept up to date
as files come and go, see jobs/storage.py)."""

from django.db import migrations
from django.db.models import OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce


def count_storage_used(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    JobFile = apps.get_model("jobs", "JobFile")
    totals = JobFile.objects.filter(owner=OuterRef("pk")).order_by().values("owner").annotate(total=Sum("size"))
    User.objects.update(storage_used=Coalesce(Subquery(totals.values("total")), Value(0)))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_storage_quota"),
        ("jobs", "0003_job_user_started_idx"),
    ]

    operations = [migrations.RunPython(count_storage_used, migrations.RunPython.noop)]
