"""`manage.py qcluster`: django-q2's worker cluster, stopping within seconds on SIGTERM or SIGINT.

This command takes the place of django-q2's own `qcluster` (the `comfyportal` app is listed
before `django_q` in INSTALLED_APPS). It starts the same `Cluster`, and stops it differently:

- django-q2's master stops from inside its signal handler (`Cluster.sig_handler → stop →
  stop_event.set()`). `Event.set()` waits until every process waiting on the event has woken;
  when the whole process group got SIGTERM (systemd's KillMode=control-group), the sentinel
  waiting on it has just died, so the master waits for ever. And when only the master got the
  signal, the sentinel waits for every worker to finish its task, and a job runner's task
  lasts its whole lease (minutes).
- Here the signal handler only records the signal. The main loop then: (1) tells the job runners
  of this cluster to hand their jobs over (`jobs.supervision.set_cluster_stopping`: another
  runner adopts them within a second or two); (2) lets the sentinel stop its processes as
  django-q2 does (the pusher first; each worker finishes the tasks already queued here), setting
  its stop event from a thread so that nothing can block this loop; (3) waits for every process
  of the cluster to end, and kills what is left after WORKER_STOP_TIMEOUT seconds.
- SIGTERM to every process at once also ends within seconds: the sentinel, the pusher and idle
  workers end at once (their default), a worker running a runner hands its jobs over first
  (`jobs.tasks.run_engine`), and this process waits for them as above. It is a child
  subreaper, so workers whose sentinel died are still its children, waited for and never left
  behind.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time

import psutil
from django.conf import settings
from django.core.management.base import BaseCommand
from django_q.cluster import Cluster

from jobs.supervision import set_cluster_stopping

logger = logging.getLogger("comfyportal.worker")

PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h
# How often the snapshot of descendants is renewed while the cluster runs. On Linux it is only a
# fallback (as a subreaper this process is the parent of every orphan); five times a second it
# cost more CPU than an idle cluster's job runners.
DESCENDANTS_EVERY = 5.0


def become_subreaper() -> None:
    """Orphaned descendants (workers whose sentinel died) become our children, not init's."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the snapshot of descendants below still helps
        pass


class Command(BaseCommand):
    help = "Start a django-q2 cluster (job runners, schedules); SIGTERM or SIGINT stops it within seconds."

    def handle(self, *args, **options):
        settings.SECRET_KEY  # noqa: B018  (as django-q2's command: refuse to start without one)
        become_subreaper()
        received: list[int] = []
        cluster = Cluster()  # installs django-q2's handlers, replaced now
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda signum, frame: received.append(signum))
        try:
            cluster.start()
        except RuntimeError:  # the sentinel died while starting: stopped by a signal, or broken
            if not received:
                raise
        known: set[int] = set()  # every descendant seen, in case one is re-parented elsewhere
        next_look = 0.0
        while not received and cluster.sentinel.is_alive():
            if time.monotonic() >= next_look:  # finding descendants reads every process on the machine
                known.update(p.pid for p in _descendants())
                next_look = time.monotonic() + DESCENDANTS_EVERY
            time.sleep(0.2)
        reason = signal.Signals(received[0]).name if received else "its sentinel ended"
        logger.info("worker stopping (%s): job runners hand their jobs over", reason)
        started = time.monotonic()
        left = stop_cluster(cluster, known, timeout=settings.WORKER_STOP_TIMEOUT)
        logger.info(
            "worker stopped in %.1f s%s",
            time.monotonic() - started,
            f"; killed {left} process(es) still running after {settings.WORKER_STOP_TIMEOUT:g} s" if left else "",
        )
        # Every process of the cluster is gone: end now. The interpreter's own teardown of this
        # large process (modules, its heap) takes seconds on a loaded machine and does nothing
        # useful here.
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0 if received else 1)  # 1: the cluster died under us, the process manager restarts it


def _descendants() -> list[psutil.Process]:
    try:
        return psutil.Process().children(recursive=True)
    except psutil.Error:
        return []


def _running(processes: list[psutil.Process]) -> list[psutil.Process]:
    """The processes still running; reaps those of our children that have ended."""
    running = []
    for process in processes:
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                running.append(process)
                continue
            os.waitpid(process.pid, os.WNOHANG)
        except (psutil.NoSuchProcess, ChildProcessError):
            pass
    return running


def stop_cluster(cluster: Cluster, known: set[int], *, timeout: float) -> int:
    """Stop every process of the cluster; returns how many had to be killed."""
    set_cluster_stopping()  # job runners hand their jobs over (they look every 0.1 s)
    if cluster.sentinel.is_alive():
        # Event.set() blocks for ever if a process waiting on the event has died: never here.
        threading.Thread(target=cluster.stop_event.set, daemon=True, name="stop-sentinel").start()
    deadline = time.monotonic() + timeout
    while True:
        processes = {p.pid: p for p in _descendants()}
        for pid in known - processes.keys():
            try:
                processes[pid] = psutil.Process(pid)
            except psutil.NoSuchProcess:
                pass
        known = set(processes)
        running = _running(list(processes.values()))
        if not running or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    for process in running:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(running, timeout=2)
    _running(_descendants())  # reap
    cluster.sentinel.join(1)
    return len(running)
