from django.core.management import BaseCommand

from jobs.supervision import ensure_runners


class Command(BaseCommand):
    help = "Enqueue job runners until JOB_RUNNERS are alive (a running qcluster picks them up)."

    def handle(self, *args, **options):
        self.stdout.write(f"started {ensure_runners()} runner(s)")
