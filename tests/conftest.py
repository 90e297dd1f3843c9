"""Shared test fixtures. ``sfmnet_plugin`` is imported first: it makes basicsr importable."""
import os
import sys

import pytest

import sfmnet_plugin  # noqa: F401  (compatibility fixes and registrations before any basicsr import)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_ROOT = os.path.join(os.path.dirname(REPO_ROOT), 'shared')


@pytest.fixture(scope='session')
def repo_root():
    return REPO_ROOT


@pytest.fixture
def python_executable():
    """The interpreter running the tests, for launching scripts in subprocesses."""
    return sys.executable
