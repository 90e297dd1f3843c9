"""Shared test fixtures. ``sfmnet_plugin`` is imported first: it makes basicsr importable."""
import os
import sys

# Test subprocesses run tiny networks: one OpenMP thread each, unless the caller chose otherwise. With more threads
# than free cores (a busy CI runner, a training next to the suite) each forward pass waits on descheduled threads.
os.environ.setdefault('OMP_NUM_THREADS', '1')

import pytest  # noqa: E402
import torch  # noqa: E402

import sfmnet_plugin  # noqa: E402,F401  (compatibility fixes and registrations before any basicsr import)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='session')
def repo_root():
    return REPO_ROOT


@pytest.fixture
def python_executable():
    """The interpreter running the tests, for launching scripts in subprocesses."""
    return sys.executable


@pytest.fixture(scope='session', autouse=True)
def single_torch_thread():
    """One intra-op thread for the whole session: the tests' forward passes are tiny, and on a busy 2-core machine
    more threads only add contention (seconds instead of milliseconds per call)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
