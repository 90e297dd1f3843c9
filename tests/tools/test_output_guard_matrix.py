"""Every console script that writes, against every output hazard that applies to it: one table, one test.

Each case arranges one hazard for one tool in a fresh folder, runs the tool's ``main()`` in this process and
asserts the three guarantees of the output guard (``sfmnet_plugin/utils/output_guard.py``) and the error boundary
(``sfmnet_plugin/utils/error_boundary.py``): exit status 1 or 2; one ``error:`` line on stderr that names the path
in question (for ``sfmnet-train``/``-test`` a refused pre-flight may put its one problem under its usual header),
and no traceback; and nothing of the user's changed (every file's bytes and every link, compared by
hash), with nothing left behind by the refused run. Read-only and full outputs are real file systems (a tmpfs
mounted read-only, or filled up); where ``mount`` is not allowed those cases are skipped with the reason.
"""
import ast
import hashlib
import json
import os
import subprocess
from os import path as osp

import numpy as np
import pytest
import torch
from basicsr.archs import build_network
from PIL import Image

from sfmnet_cli import (
    benchmark,
    convert,
    convert_official,
    demo,
    export,
    folder_to_lmdb,
    infer,
    prepare_celeba,
    prepare_ffhq,
    prepare_helen,
    restore,
)
from sfmnet_plugin.launch.cli import main as launch_main

TINY = {'type': 'SFMNet', 'upscale': 4, 'num_feat': 8, 'num_heads': 2, 'num_levels': 2}
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
OFFICIAL_KEYS = osp.join(REPO_ROOT, 'tests', 'data', 'sfmnet_official_keys.txt')


def save_png(path, size, seed):
    os.makedirs(osp.dirname(path), exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)


def official_discriminator(path):
    """An official SFMNet LightCNN-9 discriminator state dict (random values, the official keys and shapes)."""
    generator = torch.Generator().manual_seed(0)
    state = {}
    with open(OFFICIAL_KEYS, encoding='utf-8') as f:
        for line in f:
            if line.startswith('D '):
                _, key, shape = line.split(maxsplit=2)
                state[key] = torch.randn(ast.literal_eval(shape.strip()), generator=generator)
    torch.save(state, path)


@pytest.fixture
def ws(tmp_path, monkeypatch):
    """The user's files: LR faces, photos, HR test images, image folders, checkpoints, and a victim file that a
    link may point at."""
    monkeypatch.setenv('SFMNET_ROOT_PATH', str(tmp_path / 'root'))
    for i in range(2):
        save_png(tmp_path / 'lr' / f'{i}.png', 8, i)
        save_png(tmp_path / 'hr' / f'{i}.png', 32, 10 + i)
        save_png(tmp_path / 'src' / f'{i}.png', 16, 20 + i)
    save_png(tmp_path / 'photos' / 'p.png', 48, 30)
    torch.manual_seed(0)
    torch.save({'params': build_network(dict(TINY)).state_dict()}, tmp_path / 'tiny.pth')
    (tmp_path / 'victim.txt').write_text('the user\'s file\n')
    (tmp_path / 'corrupt.safetensors').write_bytes(np.random.default_rng(0).bytes(4096))
    os.makedirs(tmp_path / 'root')
    yield tmp_path
    for name in ('readonly', 'full'):  # the read-only and full file systems of a case
        if osp.ismount(tmp_path / name):
            subprocess.run(['umount', '-l', str(tmp_path / name)], check=False)


# How each tool is called: (main, argv(ws, output, **changes)); output is a folder, or a file for export/convert.
def infer_argv(ws, out, inputs=None, checkpoint=None):
    return [*map(str, inputs or [ws / 'lr']), '--output', str(out), '--checkpoint', str(checkpoint or ws / 'tiny.pth'),
            '--arch-json', json.dumps(TINY), '--side-by-side']


def restore_argv(ws, out, inputs=None, checkpoint=None):
    return [*map(str, inputs or [ws / 'photos']), '--output', str(out), '--checkpoint',
            str(checkpoint or ws / 'tiny.pth'), '--arch-json', json.dumps(TINY), '--device', 'cpu']


def benchmark_argv(ws, out, gt=None, checkpoint=None, extra=()):
    network = ['--network', 'Net', str(checkpoint)] if checkpoint else []
    return ['--gt', str(gt or ws / 'hr'), '--scale', '4', '--bicubic', *network, '--output', str(out), '--metrics',
            'sfmnet', '--latency-repeats', '0', '--sheet-images', '0', '--no-progress', '--device', 'cpu', *extra]


def export_argv(ws, out, checkpoint=None):
    return ['--checkpoint', str(checkpoint or ws / 'tiny.pth'), '--arch-json', json.dumps(TINY), '--lr-size', '8',
            '--output', str(out)]


def convert_argv(ws, out, checkpoint=None):
    if checkpoint is None and not (ws / 'official_D.pth').exists():  # made only where used: 20 MB
        official_discriminator(ws / 'official_D.pth')
    return [str(checkpoint or ws / 'official_D.pth'), str(out)]


def convert_format_argv(ws, out, checkpoint=None):
    """sfmnet-convert: the plugin's own checkpoint to ``.safetensors`` (the row of the safetensors writer)."""
    return [str(checkpoint or ws / 'tiny.pth'), str(out)]


def lmdb_argv(ws, out, src=None, extra=()):
    return [str(src or ws / 'src'), str(out), '--workers', '1', *extra]


# The preparation tools share folder-to-lmdb's writer; each console script is its own row, on a miniature release in
# the layout it reads (two images; see tests/prep/ for full ones): CelebA's aligned images with a split list,
# Helen's aligned test faces, FFHQ's numbered folders (tiny squares, with --min-crop-size to match).
def prepare_release(ws, tool):
    """The input folder of ``tool`` (made on first use) and the arguments that read it."""
    if tool == 'prepare-celeba':
        root = ws / 'celeba'
        if not root.exists():
            for i in range(2):
                save_png(root / 'img_align_celeba' / f'00000{i + 1}.jpg', 64, 50 + i)
            (ws / 'test_list.txt').write_text('000001.jpg\n000002.jpg\n')
        return root, ['--root', str(root), '--protocol', 'aligned', '--aligned-crop-size', '64', '--split-list',
                      f'test:{ws / "test_list.txt"}', '--scales', '4', '--min-crop-size', '16']
    if tool == 'prepare-helen':
        root = ws / 'helen_aligned'
        if not root.exists():
            for i in range(2):
                save_png(root / f'{i}.png', 32, 52 + i)
        return root, ['--from-aligned', str(root), '--hr-size', '32', '--scales', '4', '--min-crop-size', '16']
    root = ws / 'ffhq'
    if not root.exists():
        for i in range(2):
            save_png(root / 'images1024x1024' / '00000' / f'0000{i}.png', 32, 54 + i)
    return root, ['--root', str(root), '--splits', 'train', '--hr-size', '16', '--min-crop-size', '16']


def prepare_argv(tool):
    def argv(ws, out, extra=()):
        _, arguments = prepare_release(ws, tool)
        return [*arguments, '--out', str(out), '--workers', '1', *extra]

    return argv


def demo_argv(ws, out, extra=()):
    return ['--output', str(out), *extra]


def launcher(stage):
    """``sfmnet-train``/``sfmnet-test`` in this process: the exit status of the launcher's SystemExit."""
    def main(argv):
        try:
            launch_main(stage, argv=argv)
        except SystemExit as error:
            return error.code
        return 0

    return main


def run_options(ws, stage, checkpoint):
    """A tiny ``stage`` run of the tiny SFMNet on the LR/HR test images (x4), starting from ``checkpoint``."""
    dataset = {'name': 'faces', 'type': 'PairedImageDataset', 'dataroot_gt': str(ws / 'hr'),
               'dataroot_lq': str(ws / 'lr'), 'io_backend': {'type': 'disk'}}
    options = {'name': f'guard_{stage}', 'model_type': 'SRModel', 'scale': 4, 'num_gpu': 0, 'manual_seed': 0,
               'network_g': dict(TINY), 'path': {'pretrain_network_g': str(checkpoint), 'strict_load_g': True},
               'val': {'save_img': False, 'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 0}}},
               'datasets': {'test_1': dataset}}
    if stage == 'train':
        options['datasets'] = {'train': dict(dataset, gt_size=32, use_hflip=False, use_rot=False,
                                             num_worker_per_gpu=0, batch_size_per_gpu=1, dataset_enlarge_ratio=1),
                               'val': dataset}
        options['train'] = {'optim_g': {'type': 'Adam', 'lr': 1e-4}, 'total_iter': 1, 'warmup_iter': -1,
                            'scheduler': {'type': 'MultiStepLR', 'milestones': [10], 'gamma': 0.5},
                            'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0}}
        options['val']['val_freq'] = 10
        options['logger'] = {'print_freq': 1, 'save_checkpoint_freq': 10, 'use_tb_logger': False}
    path = ws / f'{stage}.yml'
    path.write_text(json.dumps(options))  # JSON is YAML
    return ['-opt', str(path)]


def train_argv(ws, out, checkpoint=None):
    os.environ['SFMNET_ROOT_PATH'] = str(out)  # restored by the fixture's monkeypatch
    return run_options(ws, 'train', checkpoint or ws / 'tiny.pth')


def evaluation_argv(ws, out, checkpoint=None):
    os.environ['SFMNET_ROOT_PATH'] = str(out)
    return run_options(ws, 'test', checkpoint or ws / 'tiny.pth')


TOOLS = {'infer': (infer.main, infer_argv), 'restore': (restore.main, restore_argv),
         'benchmark': (benchmark.main, benchmark_argv), 'export': (export.main, export_argv),
         'convert-official': (convert_official.main, convert_argv), 'convert': (convert.main, convert_format_argv),
         'folder-to-lmdb': (folder_to_lmdb.main, lmdb_argv),
         'prepare-celeba': (prepare_celeba.main, prepare_argv('prepare-celeba')),
         'prepare-helen': (prepare_helen.main, prepare_argv('prepare-helen')),
         'prepare-ffhq': (prepare_ffhq.main, prepare_argv('prepare-ffhq')),
         'demo': (demo.main, demo_argv), 'train': (launcher('train'), train_argv),
         'test': (launcher('test'), evaluation_argv)}
PREPARATION = ('prepare-celeba', 'prepare-helen', 'prepare-ffhq')
FILE_OUTPUTS = {'export': 'model.onnx', 'convert-official': 'converted.pth', 'convert': 'converted.safetensors',
                'folder-to-lmdb': 'out.lmdb'}


def output_in(folder, tool):
    return folder / FILE_OUTPUTS.get(tool, 'out')


# Each hazard: arrange(ws, tool) -> (argv, the path the error line must name). Only the tools it applies to are
# in the table (HAZARDS below); the reasons for the gaps are in docs/safety.md.
def output_is_an_input_folder(ws, tool):
    argv = TOOLS[tool][1]
    folder = {'infer': ws / 'lr', 'restore': ws / 'photos', 'benchmark': ws / 'hr'}.get(tool)
    if tool == 'demo':
        os.makedirs(ws / 'cache')
        return demo_argv(ws, ws / 'cache', ['--cache-dir', str(ws / 'cache')]), ws / 'cache'
    if tool == 'folder-to-lmdb':
        os.rename(ws / 'src', ws / 'src.lmdb')
        return lmdb_argv(ws, ws / 'src.lmdb', src=ws / 'src.lmdb'), ws / 'src.lmdb'
    if tool in PREPARATION:  # the release's own folder as --out
        root, _ = prepare_release(ws, tool)
        return argv(ws, root), root
    return argv(ws, folder), folder


def output_name_is_an_input(ws, tool):
    out = ws / 'out'
    if tool == 'infer':  # a.png's side-by-side is a_sbs.png: an input of the same run, in the output folder
        save_png(out / '0_sbs.png', 8, 40)
        return infer_argv(ws, out, inputs=[ws / 'lr' / '0.png', out / '0_sbs.png']), out / '0_sbs.png'
    if tool == 'restore':
        save_png(out / 'p_before_after.png', 48, 41)
        return restore_argv(ws, out, inputs=[ws / 'photos' / 'p.png', out / 'p_before_after.png']), \
            out / 'p_before_after.png'
    if tool == 'benchmark':  # the pair list is table.csv of the output folder
        os.makedirs(out)
        (out / 'table.csv').write_text('image_a,image_b,same\n0,1,1\n')
        return benchmark_argv(ws, out, extra=['--pairs', str(out / 'table.csv')]), out / 'table.csv'
    if tool == 'export':
        return export_argv(ws, ws / 'tiny.pth'), ws / 'tiny.pth'
    if tool == 'convert-official':
        return convert_argv(ws, ws / 'official_D.pth'), ws / 'official_D.pth'
    if tool == 'convert':
        return convert_format_argv(ws, ws / 'tiny.pth'), ws / 'tiny.pth'
    raise AssertionError(tool)


def two_outputs_with_one_name(ws, tool):
    save_png(ws / 'more' / '0.jpg', 8 if tool == 'infer' else 48, 42)
    first = ws / 'lr' / '0.png' if tool == 'infer' else ws / 'photos' / 'p.png'
    if tool == 'restore':
        os.rename(ws / 'more' / '0.jpg', ws / 'more' / 'p.jpg')
        return restore_argv(ws, ws / 'out', inputs=[first, ws / 'more' / 'p.jpg']), ws / 'more' / 'p.jpg'
    return infer_argv(ws, ws / 'out', inputs=[first, ws / 'more' / '0.jpg']), ws / 'more' / '0.jpg'


def output_through_a_symlink(ws, tool):
    out = output_in(ws, tool)
    name = {'infer': '0.png', 'restore': 'p.png', 'benchmark': 'table.md', 'demo': 'models/SFMNet.safetensors'}
    if tool in PREPARATION:  # a link to the user's folder where a split's folder would go
        link = out / 'train' if tool == 'prepare-ffhq' else out / 'test'
        os.makedirs(out)
        os.symlink(ws / 'lr', link)
        return TOOLS[tool][1](ws, out, extra=['--overwrite']), link
    if tool in FILE_OUTPUTS:
        link = out
        if tool == 'folder-to-lmdb':  # a link to the user's folder where the LMDB would go
            os.symlink(ws / 'lr', link)
            return lmdb_argv(ws, out, extra=['--overwrite']), link
    else:
        link = out / name[tool]
    os.makedirs(osp.dirname(link), exist_ok=True)
    os.symlink(ws / 'victim.txt', link)
    return TOOLS[tool][1](ws, out), link


def a_folder_the_tool_did_not_create(ws, tool):
    if tool == 'folder-to-lmdb':  # --overwrite onto the user's folder that happens to carry the name
        save_png(ws / 'out.lmdb' / 'holiday.png', 8, 43)
        return lmdb_argv(ws, ws / 'out.lmdb', extra=['--overwrite']), ws / 'out.lmdb'
    if tool in PREPARATION:  # --overwrite onto the user's folder that carries a split's name
        split = ws / 'out' / ('train' if tool == 'prepare-ffhq' else 'test')
        save_png(split / 'holiday.png', 8, 45)
        return TOOLS[tool][1](ws, ws / 'out', extra=['--overwrite']), split
    save_png(ws / 'out' / 'faces' / 'train' / 'mine.png', 8, 44)  # the demo replaces faces/train of its own runs
    return demo_argv(ws, ws / 'out'), ws / 'out' / 'faces' / 'train'


def a_look_alike_of_its_output(ws, tool):
    """The user's folder holding exactly the files the tool's output holds (a file named data.mdb, a split's report
    and LMDB names), but no owner marker: still not the tool's to replace."""
    def look_alike(folder, names):
        os.makedirs(folder)
        for name in names:
            os.makedirs(folder / osp.dirname(name), exist_ok=True)
            (folder / name).write_text('the user\'s file\n')
        return folder

    lmdb_files = ['data.mdb', 'lock.mdb', 'meta_info.txt']
    if tool == 'folder-to-lmdb':
        return lmdb_argv(ws, look_alike(ws / 'out.lmdb', lmdb_files), extra=['--overwrite']), ws / 'out.lmdb'
    if tool in PREPARATION:
        split = look_alike(ws / 'out' / ('train' if tool == 'prepare-ffhq' else 'test'),
                           ['prepare_report.txt', *(f'HR.lmdb/{name}' for name in lmdb_files)])
        return TOOLS[tool][1](ws, ws / 'out', extra=['--overwrite']), split
    lmdb = look_alike(ws / 'out' / 'lmdb' / 'train_HR.lmdb', lmdb_files)
    return demo_argv(ws, ws / 'out'), lmdb


def output_folder_missing(ws, tool):
    """A file output in a folder that does not exist (a mistyped path): refused, not made, by the tools that write
    one file the user names (sfmnet-export makes its folder, as --output's help says)."""
    return TOOLS[tool][1](ws, output_in(ws / 'missing', tool)), ws / 'missing'


def corrupt_weights(ws, tool):
    corrupt = ws / 'corrupt.safetensors'
    if tool == 'benchmark':
        return benchmark_argv(ws, ws / 'out', checkpoint=corrupt), corrupt
    return TOOLS[tool][1](ws, output_in(ws, tool), checkpoint=corrupt), corrupt


def _mount_tmpfs(folder, size='512k'):
    os.makedirs(folder)
    result = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs', str(folder)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f'cannot mount a tmpfs here ({result.stderr.strip() or result.returncode}): the read-only and '
                    'full-disk cases need one (as root; read-only permissions do not stop root)')


def read_only_output(ws, tool):
    mount = ws / 'readonly'
    _mount_tmpfs(mount)
    if tool not in FILE_OUTPUTS:
        os.makedirs(mount / 'out')
    subprocess.run(['mount', '-o', 'remount,ro', str(mount)], check=True)
    return TOOLS[tool][1](ws, output_in(mount, tool)), mount


def _fill(mount, leave_pages=0):
    """Fill the file system at ``mount`` until every further block fails with ENOSPC, then give ``leave_pages``
    pages back (a disk that fills up while the tool writes)."""
    filler = os.open(mount / 'filler', os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(filler, b'\0' * 4096)
    except OSError:
        pass
    finally:
        os.close(filler)
    if leave_pages:
        os.truncate(mount / 'filler', os.path.getsize(mount / 'filler') - leave_pages * 4096)


def full_output(ws, tool):
    mount = ws / 'full'
    _mount_tmpfs(mount)
    if tool not in FILE_OUTPUTS:
        os.makedirs(mount / 'out')
    _fill(mount)
    return TOOLS[tool][1](ws, output_in(mount, tool)), mount


def disk_fills_while_writing(ws, tool):
    mount = ws / 'full'
    _mount_tmpfs(mount)
    if tool not in FILE_OUTPUTS:
        os.makedirs(mount / 'out')
    _fill(mount, leave_pages=1)  # the pre-flight passes; the first file that needs a second page fails
    return TOOLS[tool][1](ws, output_in(mount, tool)), mount


FILE_TOOLS = ('export', 'convert-official', 'convert')
WRITERS = ('infer', 'restore', 'benchmark', *FILE_TOOLS, 'folder-to-lmdb', *PREPARATION)
HAZARDS = {
    'output is an input folder': (output_is_an_input_folder, ['infer', 'restore', 'benchmark', 'folder-to-lmdb',
                                                              *PREPARATION, 'demo']),
    'output name is an input': (output_name_is_an_input, ['infer', 'restore', 'benchmark', *FILE_TOOLS]),
    'two outputs with one name': (two_outputs_with_one_name, ['infer', 'restore']),
    'output through a symlink': (output_through_a_symlink, [*WRITERS, 'demo']),
    'a folder the tool did not create': (a_folder_the_tool_did_not_create, ['folder-to-lmdb', *PREPARATION, 'demo']),
    'a look-alike of its output': (a_look_alike_of_its_output, ['folder-to-lmdb', *PREPARATION, 'demo']),
    'output folder missing': (output_folder_missing, ['convert-official', 'convert']),
    'read-only output': (read_only_output, [*WRITERS, 'demo', 'train', 'test']),
    'full output': (full_output, [*WRITERS, 'demo', 'train', 'test']),
    'disk fills while writing': (disk_fills_while_writing, list(WRITERS)),
    'corrupt weight file': (corrupt_weights, ['infer', 'restore', 'benchmark', *FILE_TOOLS, 'train', 'test']),
}
CASES = [pytest.param(tool, hazard, id=f'{tool}-{hazard.replace(" ", "_")}')
         for hazard, (_, tools) in HAZARDS.items() for tool in tools]


def snapshot(root, skip=()):
    """{relative path: content hash, link target or 'folder'} of everything under ``root`` (links not followed)."""
    state = {}
    for folder, folders, files in os.walk(root):
        folders[:] = [name for name in folders if osp.join(folder, name) not in skip]
        for name in folders + files:
            path = osp.join(folder, name)
            if osp.islink(path):
                state[osp.relpath(path, root)] = 'link -> ' + os.readlink(path)
            elif osp.isdir(path):
                state[osp.relpath(path, root)] = 'folder'
            else:
                with open(path, 'rb') as f:
                    state[osp.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return state


@pytest.mark.parametrize('tool, hazard', CASES)
def test_every_tool_refuses_every_output_hazard_in_one_line_and_changes_nothing(ws, tool, hazard, capsys):
    arrange, _ = HAZARDS[hazard]
    argv, named = arrange(ws, tool)
    before = snapshot(ws)
    capsys.readouterr()
    status = TOOLS[tool][0](argv)
    err = capsys.readouterr().err.strip()
    after = snapshot(ws)
    assert status in (1, 2), (status, err)
    lines = err.splitlines()
    if tool in ('train', 'test') and len(lines) == 2:  # the launchers' pre-flight: a header, then one line a problem
        assert lines[0] == f'sfmnet-{tool}: cannot start, 1 problem (nothing was created):', err
        lines = lines[1:]
    else:
        assert 'error: ' in err, err
    if hazard == 'disk fills while writing':  # refused mid-work: the progress lines before the error stay
        lines = lines[-1:]
        assert 'error: ' in lines[0] and err.count('error: ') == 1, err
    assert len(lines) == 1 and 'Traceback' not in err, err
    assert str(named) in err or osp.realpath(named) in err, err
    if hazard == 'disk fills while writing':  # the outputs completed before the disk filled up are kept
        new = {name for name in after if name not in before}
        assert {name: after[name] for name in before} == before, err
        assert all(name.startswith(osp.join('full', FILE_OUTPUTS.get(tool, 'out'))) for name in new), new
        assert not [name for name in new if 'partial' in name or osp.basename(name).startswith('.')], new
    else:
        assert after == before  # every byte and link of the user's, and nothing left behind
