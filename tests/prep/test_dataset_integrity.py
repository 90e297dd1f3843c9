"""Preparation never deletes what it did not make, rebuilds survive SIGKILL at any moment, verify_lmdb checks a
split against its report, failures are one line, subfolders are not ignored in silence."""
import os
import shutil
import signal
import sys
from os import path as osp

import lmdb
import numpy as np
import pytest
from PIL import Image

from sfmnet_cli import folder_to_lmdb, prepare_helen, verify_lmdb
from sfmnet_plugin.data.lmdb_reader import check_lmdb, read_meta_info
from sfmnet_plugin.prep import output_folders as atomic_output
from sfmnet_plugin.prep import verify
from sfmnet_plugin.utils import lmdb_env


def write_faces(folder, count, size=32, seed=0):
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(osp.join(folder, f'{i:03d}.png'))
    return str(folder)


def helen_argv(source, out, *extra):
    return ['--from-aligned', str(source), '--split-name', 'test', '--out', str(out), '--hr-size', '32',
            '--scales', '4', '--min-crop-size', '0', '--workers', '1', *extra]


def forget_lmdb_handles():
    """Close the process's shared LMDB handles: the test rebuilds paths that verify has already opened."""
    for env in lmdb_env._LMDB_ENVIRONMENTS.values():
        env.close()
    lmdb_env._LMDB_ENVIRONMENTS.clear()


def error_lines(stderr):
    """The ``error:`` lines of a run's stderr (progress bars also go there); there must be no traceback."""
    assert 'Traceback' not in stderr
    return [line for line in stderr.splitlines() if ': error: ' in line]


def verify_split(split_dir):
    forget_lmdb_handles()
    return verify_lmdb.main([str(split_dir), '--workers', '1'])


# ------------------------------------------------------------------ names and deletions


@pytest.mark.parametrize('name', ['../victim', '../../victim', '/tmp/victim', 'a/b', '..', '.hidden', 'x y'])
def test_split_names_must_be_plain_names(tmp_path, capsys, name):
    victim = tmp_path / 'victim'
    victim.mkdir()
    (victim / 'precious.txt').write_text('user data')
    source = write_faces(tmp_path / 'faces', 2)
    assert prepare_helen.main(['--from-aligned', source, '--split-name', name, '--out', str(tmp_path / 'out' / 'x'),
                           '--hr-size', '32', '--scales', '4', '--min-crop-size', '0', '--workers', '1',
                           '--overwrite']) == 2
    assert 'plain name' in capsys.readouterr().err
    assert os.listdir(victim) == ['precious.txt'] and not (tmp_path / 'out').exists()


def test_celeba_split_list_names_must_be_plain_names(tmp_path, capsys):
    from sfmnet_plugin.tools import prepare_celeba

    with pytest.raises(prepare_celeba.DataPrepError, match='plain name'):
        prepare_celeba.parse_split_list_option('../../somewhere:list.txt')


def test_overwrite_never_replaces_a_folder_the_tool_did_not_make(tmp_path, capsys):
    source = write_faces(tmp_path / 'faces', 2)
    user_folder = tmp_path / 'out' / 'test'
    user_folder.mkdir(parents=True)
    (user_folder / 'thesis.tex').write_text('years of work')
    assert prepare_helen.main(helen_argv(source, tmp_path / 'out', '--overwrite')) == 2
    assert 'was not created by this tool' in capsys.readouterr().err
    assert os.listdir(user_folder) == ['thesis.tex']
    assert sorted(os.listdir(tmp_path / 'out')) == ['test']


def test_a_leftover_partial_folder_is_removed_only_if_the_tool_made_it(tmp_path, capsys):
    source = write_faces(tmp_path / 'faces', 2)
    foreign = tmp_path / 'out' / 'test.partial'
    foreign.mkdir(parents=True)
    (foreign / 'notes.txt').write_text('not a preparation leftover')
    assert prepare_helen.main(helen_argv(source, tmp_path / 'out')) == 2
    assert 'refusing to delete' in capsys.readouterr().err and os.listdir(foreign) == ['notes.txt']


# ------------------------------------------------------------------ atomic rebuilds


def _kill_self(*_args, **_kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


def _after_first_file_removed(path, *args, **kwargs):
    for root, _, files in os.walk(path):
        for name in files:
            os.remove(osp.join(root, name))
            _kill_self()
    _kill_self()


def _put_then_kill_on_third(original):
    calls = []

    def put(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            _kill_self()
        return original(self, *args, **kwargs)
    return put


# Where a rebuild is killed: (description, patch applied in the killed process).
KILL_MOMENTS = {
    'while writing the new images': lambda mp: mp.setattr(
        'sfmnet_plugin.prep.lmdb_writer.LmdbWriter.put',
        _put_then_kill_on_third(__import__('sfmnet_plugin.prep.lmdb_writer', fromlist=['x']).LmdbWriter.put)),
    'with the new output complete, before the swap': lambda mp: mp.setattr(atomic_output, '_swap_into_place',
                                                                           _kill_self),
    'just before the exchange': lambda mp: mp.setattr(atomic_output, '_exchange', _kill_self),
    # the old output is deleted by the output guard's delete_marker_last, through shutil.rmtree
    'after the exchange, before the old output is removed': lambda mp: mp.setattr(shutil, 'rmtree', _kill_self),
    'while the old output is being removed': lambda mp: mp.setattr(shutil, 'rmtree', _after_first_file_removed),
    'between the two renames (no exchange available)': lambda mp: (
        mp.setattr(atomic_output, '_exchange', lambda *a: False),
        mp.setattr(atomic_output.os, 'rename', _kill_on_second_rename(os.rename))),
}


def _kill_on_second_rename(original):
    calls = []

    def rename(*args):
        calls.append(args)
        if len(calls) == 2:
            _kill_self()
        return original(*args)
    return rename


def run_killed(argv, moment):
    """Run prepare_helen in a forked child that SIGKILLs itself at ``moment``; returns how it ended."""
    pid = os.fork()
    if pid == 0:  # the child: patch, run, and (normally) die by SIGKILL inside
        try:
            with pytest.MonkeyPatch.context() as mp:
                KILL_MOMENTS[moment](mp)
                sys.stdout = sys.stderr = open(os.devnull, 'w')
                prepare_helen.main(argv)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


@pytest.mark.parametrize('moment', list(KILL_MOMENTS))
def test_a_killed_rebuild_leaves_the_old_or_the_new_complete_split(tmp_path, moment):
    out, split = tmp_path / 'out', tmp_path / 'out' / 'test'
    old_source, new_source = write_faces(tmp_path / 'old', 2, seed=0), write_faces(tmp_path / 'new', 3, seed=1)
    assert prepare_helen.main(helen_argv(old_source, out)) == 0
    assert run_killed(helen_argv(new_source, out, '--overwrite', '--save-png'), moment)

    if not split.exists():  # only between two renames: the old output waits beside it to be restored
        assert (out / 'test.old').exists() and moment.startswith('between')
        assert prepare_helen.main(helen_argv(new_source, out)) == 0  # no --overwrite: restores, then skips
    forget_lmdb_handles()
    lmdbs = [name for name in os.listdir(split) if name.endswith('.lmdb')]
    assert sorted(lmdbs) == ['HR.lmdb', 'LR_x4.lmdb']
    assert all(check_lmdb(str(split / name)) == [] for name in lmdbs)
    # the split matches its report; at most a marked leftover of the killed run waits beside it
    assert all('left over from an interrupted run' in p for p in verify.check_split_report(str(split)))
    count = len(read_meta_info(str(split / 'HR.lmdb')))
    assert count in (2, 3)
    assert osp.isdir(split / 'HR') == (count == 3)  # the new output has its PNGs, the old one none
    # the next rebuild cleans up and completes
    assert prepare_helen.main(helen_argv(new_source, out, '--overwrite', '--save-png')) == 0
    assert verify_split(split) == 0 and sorted(os.listdir(out)) == ['test']
    assert len(os.listdir(split / 'HR')) == 3


def test_verify_detects_a_split_that_does_not_match_its_report(tmp_path, capsys):
    source = write_faces(tmp_path / 'faces', 3)
    assert prepare_helen.main(helen_argv(source, tmp_path / 'out', '--save-png')) == 0
    split = tmp_path / 'out' / 'test'
    assert verify_split(split) == 0
    os.remove(split / 'HR' / '001.png')  # part of the PNGs, as a killed rebuild leaves them
    assert verify_split(split) == 1
    assert f'{split / "HR"} holds 2 images but prepare_report.txt says 3' in capsys.readouterr().out
    import shutil

    shutil.rmtree(split / 'LR_x4.lmdb')  # one LMDB missing, the report still "complete"
    assert verify_split(split) == 1
    assert 'LR_x4.lmdb is missing although prepare_report.txt lists it' in capsys.readouterr().out


# ------------------------------------------------------------------ one line naming the path


def test_disk_full_while_writing_an_lmdb_is_one_line(tmp_path, capsys, monkeypatch):
    source = write_faces(tmp_path / 'faces', 2)

    class FullDisk:
        def __init__(self, real):
            self.real = real

        def begin(self, write=False):
            raise lmdb.Error('mdb_txn_commit: Input/output error')

        def __getattr__(self, name):
            return getattr(self.real, name)

    real_open = lmdb.open
    monkeypatch.setattr(lmdb, 'open', lambda *a, **k: FullDisk(real_open(*a, **k)))
    assert prepare_helen.main(helen_argv(source, tmp_path / 'out')) == 2
    [err] = error_lines(capsys.readouterr().err)
    assert 'test.partial/HR.lmdb' in err and 'Input/output error' in err and 'is the disk full' in err
    assert not (tmp_path / 'out' / 'test').exists() and not (tmp_path / 'out' / 'test.partial').exists()


def test_out_that_is_a_file_is_one_line(tmp_path, capsys):
    source = write_faces(tmp_path / 'faces', 1)
    (tmp_path / 'out').write_text('a file')
    assert prepare_helen.main(helen_argv(source, tmp_path / 'out')) == 2
    [err] = error_lines(capsys.readouterr().err)
    assert f'--out {tmp_path / "out"}: is a file' in err
    assert folder_to_lmdb.main([source, str(tmp_path / 'out' / 'x.lmdb'), '--workers', '1']) == 2
    [err] = error_lines(capsys.readouterr().err)
    assert 'is a file' in err


@pytest.mark.skipif(os.geteuid() == 0, reason='root writes into read-only folders')
def test_read_only_out_is_one_line(tmp_path, capsys):
    source = write_faces(tmp_path / 'faces', 1)
    out = tmp_path / 'out'
    out.mkdir()
    out.chmod(0o555)
    try:
        assert prepare_helen.main(helen_argv(source, out)) == 2
    finally:
        out.chmod(0o755)
    [err] = error_lines(capsys.readouterr().err)
    assert 'Permission denied' in err and str(out) in err


# ------------------------------------------------------------------ subfolders


def test_folder_to_lmdb_lists_images_in_subfolders_it_skips(tmp_path, capsys):
    source = tmp_path / 'faces'
    write_faces(source, 1)
    write_faces(source / 'person1', 2, seed=1)
    assert folder_to_lmdb.main([str(source), str(tmp_path / 'a.lmdb'), '--workers', '1']) == 0
    out = capsys.readouterr().out
    assert 'person1/000.png: skipped, in a subfolder' in out and 'person1/001.png: skipped' in out
    assert 'wrote 1 image; skipped 2 (in a subfolder 2)' in out
    assert list(read_meta_info(str(tmp_path / 'a.lmdb'))) == ['000']


def test_folder_to_lmdb_recursive_keys_are_relative_paths(tmp_path, capsys):
    source = tmp_path / 'faces'
    write_faces(source, 1)
    write_faces(source / 'person1', 2, seed=1)
    write_faces(source / 'person2' / 'close', 1, seed=2)
    assert folder_to_lmdb.main([str(source), str(tmp_path / 'a.lmdb'), '--workers', '1', '--recursive']) == 0
    assert 'skipped' not in capsys.readouterr().out
    keys = list(read_meta_info(str(tmp_path / 'a.lmdb')))
    assert keys == ['000', 'person1/000', 'person1/001', 'person2/close/000']
    forget_lmdb_handles()
    assert check_lmdb(str(tmp_path / 'a.lmdb')) == []


# ------------------------------------------------------------------ check the images at start


def corrupt_lmdb_value(lmdb_path, key, content=b'\x89PNG\r\n\x1a\n truncated'):
    forget_lmdb_handles()
    env = lmdb.open(str(lmdb_path))
    with env.begin(write=True) as txn:
        txn.put(key.encode('ascii'), content)
    env.close()


@pytest.mark.parametrize('backend', ['lmdb', 'disk'])
def test_check_images_at_start_names_a_corrupt_image_before_training(tmp_path, backend):
    from sfmnet_plugin.data.image_check import DatasetImageError
    from sfmnet_plugin.data.paired_face_dataset import PairedFaceDataset

    source = write_faces(tmp_path / 'faces', 4)
    if backend == 'lmdb':
        assert folder_to_lmdb.main([source, str(tmp_path / 'HR.lmdb'), '--workers', '1']) == 0
        root = str(tmp_path / 'HR.lmdb')
        corrupt_lmdb_value(root, '002')
        bad = '002: cannot decode'
    else:
        root = source
        with open(osp.join(source, '002.png'), 'r+b') as f:
            f.truncate(100)
        bad = '002.png'
    opt = {'name': 'faces', 'type': 'PairedFaceDataset', 'dataroot_gt': root, 'scale': 4, 'phase': 'train'}
    forget_lmdb_handles()
    PairedFaceDataset(dict(opt))  # off by default: the corrupt image would only fail when drawn
    forget_lmdb_handles()
    with pytest.raises(DatasetImageError, match=f'dataset faces: check_images_at_start found 1 problem.*{bad}'):
        PairedFaceDataset(dict(opt, check_images_at_start=True))


# ------------------------------------------------------------------ damaged LMDBs are one line, never SIGBUS


def damaged_lmdb(tmp_path, damage):
    """A 12-image HR.lmdb cut to half its size, or whose data.mdb is random bytes; returns its path."""
    lmdb_path = tmp_path / 'HR.lmdb'
    assert folder_to_lmdb.main([write_faces(tmp_path / 'faces', 12, size=64), str(lmdb_path), '--workers', '1']) == 0
    data = lmdb_path / 'data.mdb'
    size = data.stat().st_size
    if damage == 'truncated':
        with open(data, 'r+b') as f:
            f.truncate(size // 2)
    else:
        data.write_bytes(np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes())
    return lmdb_path


@pytest.fixture(scope='session')
def toy_lmdb_training_options(write_yaml):
    def toy_lmdb_training_options(tmp_path, lmdb_path):
        dataset = {'name': 'damaged', 'type': 'PairedFaceDataset', 'dataroot_gt': str(lmdb_path), 'scale': 4,
                   'io_backend': {'type': 'lmdb'}}
        return write_yaml(tmp_path / 'train.yml', {
            'name': 'damaged_lmdb', 'model_type': 'SRModel', 'scale': 4, 'num_gpu': 0, 'manual_seed': 0,
            'datasets': {'train': dict(dataset, phase='train', num_worker_per_gpu=0, batch_size_per_gpu=2,
                                       dataset_enlarge_ratio=1)},
            'network_g': {'type': 'SRVGGNetCompact', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_conv': 1,
                          'upscale': 4},
            'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
            'train': {'optim_g': {'type': 'Adam', 'lr': 1e-3}, 'scheduler': {'type': 'MultiStepLR', 'milestones': [10]},
                      'total_iter': 2, 'pixel_opt': {'type': 'L1Loss'}},
            'logger': {'print_freq': 1, 'save_checkpoint_freq': 2, 'use_tb_logger': False},
        })

    return toy_lmdb_training_options


@pytest.mark.parametrize('damage', ['truncated', 'random bytes'])
def test_a_damaged_lmdb_is_one_line_never_a_signal(tmp_path, damage, launcher_env, repo_root,
                                                   toy_lmdb_training_options):
    """verify_lmdb.py, the benchmark and training (subprocesses: SIGBUS would kill pytest) each say in one line which
    LMDB is damaged and point to verify_lmdb.py; the LMDB is left as it was."""
    import subprocess

    lmdb_path = damaged_lmdb(tmp_path, damage)
    before = (lmdb_path / 'data.mdb').read_bytes()
    bin_dir = osp.dirname(sys.executable)
    commands = {
        'verify': [sys.executable, osp.join(repo_root, 'datasets_prep/verify_lmdb.py'), str(lmdb_path)],
        'benchmark': [osp.join(bin_dir, 'sfmnet-benchmark'), '--gt', str(lmdb_path), '--scale', '4', '--bicubic',
                      '--output', str(tmp_path / 'bench'), '--no-progress'],
        'train': [sys.executable, osp.join(repo_root, 'sfmnet_plugin/train.py'),
                  '-opt', str(toy_lmdb_training_options(tmp_path, lmdb_path))],
    }
    for tool, command in commands.items():
        result = subprocess.run(command, cwd=tmp_path, env=launcher_env(tmp_path / 'runs'), capture_output=True,
                                text=True, timeout=300)
        assert result.returncode > 0, f'{tool}: exit {result.returncode}\n{result.stderr[-2000:]}'  # < 0: a signal
        output = result.stdout + result.stderr
        assert 'Traceback' not in output, f'{tool}: {output[-3000:]}'
        assert f'LMDB {lmdb_path}: damaged' in output and 'verify_lmdb.py' in output, f'{tool}: {output[-2000:]}'
    assert (lmdb_path / 'data.mdb').read_bytes() == before
    assert not (tmp_path / 'runs' / 'experiments' / 'damaged_lmdb').exists()


def test_a_page_that_does_not_read_is_one_line(tmp_path):
    """An LMDB whose header is sound but whose pages were overwritten: MDB_CORRUPTED becomes a DamagedLmdbError."""
    from basicsr.utils import FileClient

    lmdb_path = tmp_path / 'HR.lmdb'
    assert folder_to_lmdb.main([write_faces(tmp_path / 'faces', 12, size=64), str(lmdb_path), '--workers', '1']) == 0
    data = lmdb_path / 'data.mdb'
    size = data.stat().st_size
    with open(data, 'r+b') as f:
        f.seek(2 * 4096)  # after the two meta pages
        f.write(np.random.default_rng(0).integers(0, 256, size - 2 * 4096, dtype=np.uint8).tobytes())
    forget_lmdb_handles()
    assert any(f'LMDB {lmdb_path}: damaged' in problem for problem in check_lmdb(str(lmdb_path)))
    forget_lmdb_handles()
    client = FileClient('lmdb', db_paths=[str(lmdb_path)], client_keys=['gt'])
    with pytest.raises(lmdb_env.DamagedLmdbError, match='verify_lmdb.py'):
        client.get('000', 'gt')
    forget_lmdb_handles()


@pytest.mark.parametrize('existing', ['folder', 'file'])
def test_folder_to_lmdb_onto_something_that_is_not_an_lmdb_is_an_error(tmp_path, capsys, existing):
    source = write_faces(tmp_path / 'faces', 2)
    target = tmp_path / 'HR.lmdb'
    if existing == 'folder':
        target.mkdir()
        (target / 'notes.txt').write_text('mine')
    else:
        target.write_text('mine')
    assert folder_to_lmdb.main([source, str(target), '--workers', '1']) == 2
    [err] = error_lines(capsys.readouterr().err)
    assert f'{target} exists but is not an LMDB' in err
    assert (target / 'notes.txt' if existing == 'folder' else target).read_text() == 'mine'
    if existing == 'folder':
        assert os.listdir(target) == ['notes.txt']
