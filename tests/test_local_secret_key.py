"""The local secret key under var/ is one key for every process that starts on a fresh folder."""

from __future__ import annotations

import multiprocessing

from comfyportal.settings import local_secret_key

RACERS = 16


def read_key_after_barrier(path, barrier, results):
    barrier.wait()  # all processes look for the key at the same moment
    results.put(local_secret_key(path))


def test_processes_racing_on_a_fresh_folder_all_get_the_same_key(tmp_path):
    context = multiprocessing.get_context("fork")
    for attempt in range(5):  # a race lost once in five fresh folders is still a lost race
        path = tmp_path / f"attempt-{attempt}" / "secret_key"
        path.parent.mkdir()
        barrier, results = context.Barrier(RACERS), context.Queue()
        processes = [
            context.Process(target=read_key_after_barrier, args=(path, barrier, results)) for _ in range(RACERS)
        ]
        for process in processes:
            process.start()
        keys = [results.get(timeout=30) for _ in processes]
        for process in processes:
            process.join(30)
            assert process.exitcode == 0
        assert len(set(keys)) == 1 and len(keys[0]) > 40, keys
        assert keys[0] == path.read_text().strip()
        assert [p.name for p in path.parent.iterdir()] == ["secret_key"], "no temporary file is left"
        assert path.stat().st_mode & 0o777 == 0o600
