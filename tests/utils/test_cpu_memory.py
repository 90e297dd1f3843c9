"""The allocator default of the plugin's entry points: on unless the user set the allocator or opted out, and never
set by ``import sfmnet_plugin`` alone."""
import os
import subprocess
import sys

import pytest

from sfmnet_plugin.utils.cpu_memory import OPT_OUT_VARIABLE, keep_freed_memory_default


@pytest.mark.parametrize('environ', [
    {'MALLOC_MMAP_THRESHOLD_': '131072'},
    {'MALLOC_TRIM_THRESHOLD_': '0'},
    {'GLIBC_TUNABLES': 'glibc.malloc.mmap_threshold=131072'},
    {OPT_OUT_VARIABLE: '1'},
])
def test_a_user_setting_or_the_opt_out_wins(environ):
    assert keep_freed_memory_default(environ) is False


def test_other_platforms_are_left_alone():
    assert keep_freed_memory_default({}, platform='darwin') is False


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc only')
def test_entry_points_keep_freed_memory_and_import_alone_does_not():
    # A 64 MiB block freed and requested again: with glibc's default it is unmapped and mapped anew (another
    # address range each time is not guaranteed, so count the process's minor page faults instead).
    script = '''
import resource, sys
import torch
import sfmnet_plugin  # noqa: F401
if sys.argv[1] == "entry":
    from sfmnet_plugin.utils.cpu_tuning import apply_process_settings
    apply_process_settings()
for _ in range(3):
    torch.ones(16, 1024, 1024)  # 64 MiB, freed at once
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    torch.ones(16, 1024, 1024)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
'''
    faults = {}
    for mode in ('import', 'entry'):
        result = subprocess.run([sys.executable, '-c', script, mode], capture_output=True, text=True, check=True,
                                env={'PATH': '/usr/bin:/bin', 'OMP_NUM_THREADS': '1',
                                     'PYTHONPATH': os.environ.get('PYTHONPATH', '')})
        faults[mode] = int(result.stdout.split()[-1])
    assert faults['import'] > 10 * 16 * 1024 * 1024 // 4096 // 2  # glibc's default: every block faulted in again
    assert faults['entry'] < faults['import'] / 10  # reused: already mapped
