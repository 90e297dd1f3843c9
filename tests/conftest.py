"""Shared test fixtures. ``sfmnet_plugin`` is imported first: it makes basicsr importable."""
import os
import sys

import pytest
import torch

import sfmnet_plugin  # noqa: F401  (compatibility fixes and registrations before any basicsr import)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='session')
def repo_root():
    return REPO_ROOT


@pytest.fixture
def python_executable():
    """The interpreter running the tests, for launching scripts in subprocesses."""
    return sys.executable


@pytest.fixture(scope='module')
def single_torch_thread():
    """One intra-op thread for a module of tiny forward passes: on a busy 2-core machine more threads only add
    contention (seconds instead of milliseconds per call). Use with ``pytestmark = usefixtures(...)``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
