"""``sfmnet-demo``: SFMNet end to end on real faces, on this machine, in minutes.

1. gathers real face photos available offline and aligns them to 128x128 crops, holding out the
   public-domain photos for testing (:mod:`sfmnet_plugin.faces`);
2. writes LMDBs with ``datasets_prep/folder_to_lmdb.py``;
3. trains a small SFMNet with ``options/demo_SFMNet_x8.yml`` (``--preset gpu``: the full-width
   network, longer);
4. tests it on the held-out faces with ``options/demo_test_SFMNet_x8.yml``;
5. copies the metric table (SFMNet against PIL-bicubic upsampling) and the contact sheet
   (LR | bicubic | SFMNet | HR) into the output folder and prints the table.

It runs each step as the command a user would type, from the repository root.
"""
import argparse
import os
import shutil
import subprocess
import sys
import time
from os import path as osp

from sfmnet_plugin.option_files import default_root_path

TRAIN_OPTIONS = 'options/demo_SFMNet_x8.yml'
TEST_OPTIONS = 'options/demo_test_SFMNet_x8.yml'
TRAIN_NAME, TEST_NAME, TEST_SET = 'demo_SFMNet_x8', 'demo_test_SFMNet_x8', 'DemoFaces_test'

# --force_yml overrides per preset; 'cpu' is the option file as written.
PRESETS = {
    'cpu': [],
    'gpu': ['network_g:num_feat=64', 'network_g:num_heads=8', 'datasets:train:batch_size_per_gpu=8',
            'datasets:train:num_worker_per_gpu=4', 'train:total_iter=20000', 'train:scheduler:milestones=[15000]',
            'train:optim_g:lr=!!float 2e-4', 'val:val_freq=2000', 'logger:save_checkpoint_freq=2000'],
}


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--output', default='demo_output', help='folder for faces, LMDBs and the final report '
                        '(relative to the repository root; default: %(default)s)')
    parser.add_argument('--preset', choices=sorted(PRESETS), default='cpu',
                        help='cpu: a 0.5M-parameter SFMNet for a few minutes; gpu: the full network, longer')
    parser.add_argument('--iterations', type=int, help='training iterations (overrides the preset)')
    parser.add_argument('--cache-dir', help='where downloaded photo packages are kept (default: ~/.cache/...)')
    parser.add_argument('--jitter', type=int, default=6, help='extra jittered crops per training face')
    parser.add_argument('--seed', type=int, default=0)
    return parser


def run_step(title, command, cwd):
    print(f'\n==> {title}\n    $ {" ".join(command)}', flush=True)
    started = time.monotonic()
    # glibc otherwise returns every large freed tensor to the OS and page-faults it back on the next
    # step: keeping freed memory makes CPU training steps about 2.5x faster (benchmarks/bench_arch.py).
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(2**34), MALLOC_TRIM_THRESHOLD_=str(2**34))
    subprocess.run(command, cwd=cwd, env=env, check=True)
    print(f'    ({time.monotonic() - started:.0f} s)', flush=True)


def main(argv=None):
    args = build_parser().parse_args(argv)
    root = default_root_path()
    if not osp.isfile(osp.join(root, TRAIN_OPTIONS)):
        raise SystemExit(f'sfmnet-demo runs from a source checkout: {TRAIN_OPTIONS} not found under {root}.')
    output = osp.join(root, args.output)
    python = sys.executable

    from sfmnet_plugin.faces import build_face_set

    print(f'==> Gathering and aligning real face photos into {output}/faces', flush=True)
    summary = build_face_set(osp.join(output, 'faces'), cache_dir=args.cache_dir, jitter=args.jitter, seed=args.seed)
    print(f'    {summary}', flush=True)

    lmdb_root = osp.join(output, 'lmdb')
    for split in ('train', 'test'):
        run_step(f'LMDB of the {split} faces',
                 [python, 'datasets_prep/folder_to_lmdb.py', osp.join(output, 'faces', split, 'HR'),
                  osp.join(lmdb_root, f'{split}_HR.lmdb'), '--overwrite'], root)

    overrides = list(PRESETS[args.preset])
    if args.iterations:
        overrides.append(f'train:total_iter={args.iterations}')
    data_paths = [f'datasets:train:dataroot_gt={lmdb_root}/train_HR.lmdb',
                  f'datasets:val:dataroot_gt={lmdb_root}/test_HR.lmdb']
    run_step('Training SFMNet', [python, 'sfmnet_plugin/train.py', '-opt', TRAIN_OPTIONS, '--force_yml',
                                 *data_paths, *overrides], root)
    network = [o for o in overrides if o.startswith('network_g:')]
    run_step('Testing on the held-out faces',
             [python, 'sfmnet_plugin/test.py', '-opt', TEST_OPTIONS, '--force_yml',
              f'datasets:test:dataroot_gt={lmdb_root}/test_HR.lmdb', *network], root)

    results = osp.join(root, 'results', TEST_NAME)
    for name in (f'{TEST_SET}_summary.md', f'{TEST_SET}_contact_sheet.png', f'{TEST_SET}_metrics.csv'):
        shutil.copy(osp.join(results, name), osp.join(output, name))
    with open(osp.join(output, f'{TEST_SET}_summary.md'), encoding='utf-8') as f:
        print('\n' + f.read())
    print(f'Contact sheet: {osp.join(output, f"{TEST_SET}_contact_sheet.png")}')
    print(f'Per-image metrics: {osp.join(output, f"{TEST_SET}_metrics.csv")}')


if __name__ == '__main__':
    main()
