"""Cost of ``check_images_at_start`` (decode every image of a training LMDB pair before training starts).

Prepares a synthetic CelebA training split (``--images`` faces, 128 x 128 HR and x8 LR, as
``bench_data.py`` does), then times :func:`sfmnet_plugin.data.image_check.check_images_at_start`
on ``HR.lmdb`` + ``LR_x8.lmdb`` with each ``--workers`` value (median of ``--repeats``) and
extrapolates to CelebA's 162,770 training faces.

    python benchmarks/bench_image_check.py --images 2000 --workers 1 2
"""
import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from os import path as osp

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path[:0] = [REPO_ROOT, osp.join(REPO_ROOT, 'benchmarks'), osp.join(REPO_ROOT, 'tests')]

from bench_data import time_preparation, write_synthetic_celeba  # noqa: E402

from sfmnet_plugin.data.image_check import check_images_at_start  # noqa: E402
from sfmnet_plugin.utils import lmdb_env  # noqa: E402

CELEBA_TRAIN = 162_770


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--images', type=int, default=2000)
    parser.add_argument('--workers', type=int, nargs='+', default=[1, 2])
    parser.add_argument('--repeats', type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        write_synthetic_celeba(osp.join(tmp, 'CelebA'), args.images)
        time_preparation(osp.join(tmp, 'CelebA'), osp.join(tmp, 'out'), 'wild', workers=os.cpu_count() or 1)
        split = osp.join(tmp, 'out', 'train')
        roots = [(osp.join(split, 'HR.lmdb'), 'lmdb', ()), (osp.join(split, 'LR_x8.lmdb'), 'lmdb', ())]
        count = sum(1 for _ in open(osp.join(split, 'HR.lmdb', 'meta_info.txt')))
        print(f'\n{count} training faces (HR 128x128 + LR 16x16 each)\n')
        print('| workers | seconds | faces/s | CelebA train (162,770 faces) |\n|---|---|---|---|')
        for workers in args.workers:
            times = []
            for _ in range(args.repeats):
                lmdb_env._LMDB_ENVIRONMENTS.clear()
                start = time.perf_counter()
                with contextlib.redirect_stderr(io.StringIO()):  # progress bars
                    check_images_at_start('bench', roots, workers)
                times.append(time.perf_counter() - start)
            seconds = statistics.median(times)
            rate = count / seconds
            print(f'| {workers} | {seconds:.2f} | {rate:.0f} | {CELEBA_TRAIN / rate / 60:.1f} min |')


if __name__ == '__main__':
    main()
