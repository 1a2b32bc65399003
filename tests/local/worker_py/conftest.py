"""Fixtures of the worker.py tests; the harness itself is in harness.py."""
import pytest

from harness import Worker


@pytest.fixture
def start_worker():
    """start_worker(root, env=None, mode="file") -> Worker; every worker is stopped after."""
    workers = []

    def start(root, env=None, mode="file"):
        w = Worker(root, env, mode)
        workers.append(w)
        return w

    yield start
    for w in workers:
        w.stop()
