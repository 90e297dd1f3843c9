"""One live run per experiment folder: the lock, its PID message, archiving that never moves a folder in use, and
recovery from a dead holder."""
import os
import signal
import subprocess
import sys

import pytest

from sfmnet_plugin.utils.output_paths import is_plain_name
from sfmnet_plugin.utils.run_lock import LOCK_NAME, FolderLock, RunFolderInUseError, RunFolderLocks

HOLD = '''
import sys, time
from sfmnet_plugin.utils.run_lock import FolderLock
FolderLock(sys.argv[1]).acquire()
print('held', flush=True)
time.sleep(120)
'''


def hold_lock_in_another_process(folder):
    process = subprocess.Popen([sys.executable, '-c', HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == 'held'
    return process


def test_a_folder_held_by_a_live_run_is_refused_with_its_pid_and_recovered_when_it_dies(tmp_path):
    folder = tmp_path / 'experiments' / 'run'
    folder.mkdir(parents=True)
    (folder / 'net_g_2.pth').write_bytes(b'weights')
    holder = hold_lock_in_another_process(folder)
    try:
        with pytest.raises(RunFolderInUseError, match=rf'{folder} is in use by a running process \(PID {holder.pid}\)'):
            FolderLock(str(folder)).acquire()
        # BasicSR's archiving never moves the live run's folder
        renamed = []
        locks = RunFolderLocks()
        with pytest.raises(RunFolderInUseError):
            locks.wrap_mkdir_and_rename(lambda path: renamed.append(path))(str(folder))
        assert renamed == [] and sorted(os.listdir(folder)) == [LOCK_NAME, 'net_g_2.pth']
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # the kernel released the dead run's lock: the folder can be used (and archived) again
    locks = RunFolderLocks()
    locks.wrap_mkdir_and_rename(lambda path: (os.rename(path, path + '_archived'), os.makedirs(path)))(str(folder))
    assert (tmp_path / 'experiments' / 'run_archived' / 'net_g_2.pth').read_bytes() == b'weights'
    assert open(folder / LOCK_NAME).read().strip() == str(os.getpid())
    other = subprocess.run([sys.executable, '-c', HOLD, str(folder)], timeout=60, capture_output=True, text=True)
    assert other.returncode != 0 and f'in use by a running process (PID {os.getpid()})' in other.stderr
    locks.release_all()
    FolderLock(str(folder)).acquire().release()


@pytest.mark.parametrize('name', ['../victim', '../../victim', '/tmp/victim', 'a/b', '..', '.hidden', 'x y', '',
                                  'a\\b', None, True, ['x']])
def test_names_that_are_paths_are_not_plain(name):
    assert not is_plain_name(name)


@pytest.mark.parametrize('name', ['train_SFMNet_x8', 'CelebA_test', 'exp.v1.2', 'run-3', 7])
def test_plain_names(name):
    assert is_plain_name(name)
