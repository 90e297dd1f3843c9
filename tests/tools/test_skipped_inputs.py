"""Every input a tool skips is listed with its reason (``--strict`` fails on any), and odd input files are one
``error:`` line: a dangling link, a link loop, a link to ``/dev/zero`` and a FIFO named ``*.png`` used to be
dropped unlisted (or, named on the command line, "not found"; a FIFO would hang the decoder)."""
import json
import os

import numpy as np
import pytest
import torch
from basicsr.archs import build_network
from PIL import Image

from sfmnet_cli import benchmark, folder_to_lmdb, infer
from sfmnet_plugin.checkpoints.io import save_checkpoint_file

TINY = {'type': 'SFMNet', 'upscale': 4, 'num_feat': 8, 'num_heads': 2, 'num_levels': 2}
ODD = {'dangling.png': 'a dangling symbolic link (to nowhere.png, which does not exist)',
       'loop.png': 'a symbolic link loop',
       'zero.png': 'a character device (through the symbolic link to /dev/zero), not a regular file',
       'fifo.png': 'a FIFO (named pipe), not a regular file'}


@pytest.fixture
def folder(tmp_path):
    folder = tmp_path / 'lr'
    folder.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(folder / 'good.png')
    os.symlink('nowhere.png', folder / 'dangling.png')
    os.symlink('loop.png', folder / 'loop.png')
    os.symlink('/dev/zero', folder / 'zero.png')
    os.mkfifo(folder / 'fifo.png')
    return folder


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    torch.save({'params': build_network(dict(TINY)).state_dict()}, tmp_path / 'tiny.pth')
    return str(tmp_path / 'tiny.pth')


def run_infer(inputs, tmp_path, checkpoint, *extra):
    return infer.main([*map(str, inputs), '--output', str(tmp_path / 'out'), '--checkpoint', checkpoint,
                       '--arch-json', json.dumps(TINY), *extra])


@pytest.mark.parametrize('named', [False, True], ids=['in a folder', 'on the command line'])
def test_infer_lists_every_skipped_input_with_its_reason_and_strict_fails(folder, tmp_path, checkpoint, capsys,
                                                                          named):
    inputs = [folder / 'good.png', *(folder / name for name in ODD)] if named else [folder]
    assert run_infer(inputs, tmp_path, checkpoint) == 0
    err = capsys.readouterr().err
    assert f'{len(ODD)} input(s) skipped:' in err
    for name, reason in ODD.items():
        assert f'  {folder / name}: {reason}' in err, err
    assert sorted(os.listdir(tmp_path / 'out')) == ['good.png']
    assert run_infer(inputs, tmp_path / 'again', checkpoint, '--strict') == 1


def test_folder_to_lmdb_lists_them_as_skipped(folder, tmp_path, capsys):
    assert folder_to_lmdb.main([str(folder), str(tmp_path / 'out.lmdb'), '--workers', '1']) == 0
    out = capsys.readouterr().out
    for name, reason in ODD.items():
        assert f'{folder / name}: skipped, {reason}' in out, out
    assert (tmp_path / 'out.lmdb' / 'meta_info.txt').read_text().startswith('good.png ')


def test_the_benchmark_lists_them_in_its_notes(folder, tmp_path, capsys):
    """A test set folder's odd entries are named in the table's notes (and logged), not silently fewer images."""
    Image.open(folder / 'good.png').resize((32, 32)).save(folder / 'good.png')
    assert benchmark.main(['--gt', str(folder), '--scale', '4', '--bicubic', '--output', str(tmp_path / 'out'),
                           '--metrics', 'sfmnet', '--latency-repeats', '0', '--sheet-images', '0',
                           '--no-progress']) == 0
    captured = capsys.readouterr()
    table = (tmp_path / 'out' / 'table.md').read_text()
    for name, reason in ODD.items():
        assert f'{folder / name}: skipped, {reason}' in table, table
        assert f'{folder / name}: skipped, {reason}' in captured.err + captured.out


def test_a_non_utf8_option_file_is_one_line(folder, tmp_path, checkpoint, capsys):
    (tmp_path / 'net.yml').write_bytes('network_g:\n  type: SFMNet  # caf\xe9\n'.encode('latin-1'))
    assert infer.main([str(folder / 'good.png'), '--output', str(tmp_path / 'out'), '--checkpoint', checkpoint,
                       '--opt', str(tmp_path / 'net.yml')]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count('\n') == 0 and 'Traceback' not in err, err
    assert f'{tmp_path / "net.yml"}: not a UTF-8 text file' in err and 'save the option file as UTF-8' in err
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('metadata, expected', [
    ({'param_keys': '"params"'}, "metadata 'param_keys' must be a non-empty JSON list of names"),
    ({'param_keys': '[1, 2'}, "metadata 'param_keys' is not JSON"),
    ({'network_g': '[]'}, "metadata 'network_g' must be a JSON object"),
])
def test_malformed_safetensors_metadata_is_one_line(folder, tmp_path, capsys, metadata, expected):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    path = tmp_path / 'odd.safetensors'
    save_file(build_network(dict(TINY)).state_dict(), str(path), metadata={'format': 'pt', **metadata})
    assert run_infer([folder / 'good.png'], tmp_path, str(path)) == 1
    err = capsys.readouterr().err.strip()
    assert err.count('\n') == 0 and 'Traceback' not in err and str(path) in err and expected in err, err


def test_a_sound_safetensors_file_still_loads(folder, tmp_path):
    torch.manual_seed(0)
    path = tmp_path / 'sound.safetensors'
    save_checkpoint_file({'params': build_network(dict(TINY)).state_dict()}, str(path), {'network_g': TINY})
    assert infer.main([str(folder / 'good.png'), '--output', str(tmp_path / 'out'), '--checkpoint', str(path)]) == 0


@pytest.mark.parametrize('options, expected', [
    ({'name': None}, 'name: None must be a text name'),
    ({'name': 3}, 'name: 3 must be a text name'),
    ({'train': {'optim_g': {'lr': float('nan')}}}, 'train.optim_g.lr: nan is not a finite number'),
    ({'train': {'total_iter': float('inf')}}, 'train.total_iter: inf is not a finite number'),
])
def test_odd_option_values_are_problems_before_anything_runs(options, expected):
    from sfmnet_plugin.config.option_values import option_value_problems

    problems = option_value_problems(options)
    assert any(problem.startswith(expected) for problem in problems), problems


@pytest.mark.parametrize('content', [b'not a torch file', None], ids=['corrupt', 'another network'])
def test_a_corrupt_or_wrong_lpips_or_fid_weight_file_is_one_line(tmp_path, capsys, content):
    from sfmnet_cli import benchmark

    (tmp_path / 'hr').mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / 'hr' / 'a.png')
    weights = tmp_path / 'weights.pth'
    if content is None:
        torch.save({'conv.weight': torch.zeros(1)}, weights)
    else:
        weights.write_bytes(content)
    for option, metric in (('--lpips-weights', 'lpips'), ('--fid-weights', 'fid')):
        status = benchmark.main(['--gt', str(tmp_path / 'hr'), '--scale', '4', '--bicubic', '--output',
                                 str(tmp_path / 'out'), '--metrics', metric, option, str(weights),
                                 '--latency-repeats', '0', '--sheet-images', '0', '--no-progress'])
        err = capsys.readouterr().err.strip()
        assert status == 1 and err.count('\n') == 0 and 'Traceback' not in err and str(weights) in err, err
        assert not (tmp_path / 'out').exists()


def test_a_test_set_lmdb_whose_meta_info_disagrees_is_one_line(tmp_path, capsys):
    """The sizes meta_info.txt lists against the stored image: checked when the set is opened (it was a traceback
    from the metric, "Image shapes are different", after the first image was super-resolved)."""
    source = tmp_path / 'hr'
    source.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(source / 'a.png')
    lmdb = tmp_path / 'hr.lmdb'
    assert folder_to_lmdb.main([str(source), str(lmdb), '--workers', '1']) == 0
    meta_info = lmdb / 'meta_info.txt'
    meta_info.write_text(meta_info.read_text().replace('(32,32,3)', '(16,16,3)'))
    capsys.readouterr()
    assert benchmark.main(['--gt', str(lmdb), '--scale', '4', '--bicubic', '--output', str(tmp_path / 'out'),
                           '--metrics', 'sfmnet', '--latency-repeats', '0', '--no-progress']) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'Traceback' not in err, err
    assert f'LMDB {lmdb}: image a is stored as 32x32x3 but meta_info.txt lists 16x16x3' in err, err
    assert not (tmp_path / 'out').exists()
