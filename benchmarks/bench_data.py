"""Throughput of the data pipeline: CelebA preparation (images/s) and PairedFaceDataset reading (samples/s).

1. Writes a synthetic CelebA release in a temporary folder: ``--images`` in-the-wild JPEGs
   (real public-domain faces pasted at random sizes and places on 400-800 x 450-900 px canvases,
   about the size of ``img_celeba`` files) with their landmark, partition and aligned 178 x 218
   counterparts.
2. Runs ``prepare_celeba`` in this process (start-up excluded) for the wild and aligned
   protocols with each ``--workers`` value, and once more with ``--save-png``; reports images/s.
3. Reads the prepared x8 training split through PairedFaceDataset, from the LMDBs and from the
   PNG folders, with DataLoader workers 0 and 2; reports samples/s (one warm-up pass first).
   The reading runs with one torch thread in this process, as DataLoader workers do: two
   intra-op threads made batch collation ten times slower here whenever the other core was busy.

    python benchmarks/bench_data.py --images 2000
"""
import argparse
import contextlib
import importlib.util
import io
import os
import random
import sys
import tempfile
import time
from os import path as osp

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)  # the plugin

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from sfmnet_cli.prepare_celeba import build_parser  # noqa: E402
from sfmnet_plugin.data.paired_face_dataset import PairedFaceDataset  # noqa: E402
from sfmnet_plugin.tools import prepare_celeba  # noqa: E402


def suite_helpers(folder=''):
    """``tests/<folder>/conftest.py`` as a module: the plain functions behind the suite's photo fixtures (a
    conftest.py is not importable by name, every test folder has one)."""
    path = osp.join(REPO_ROOT, 'tests', folder, 'conftest.py')
    spec = importlib.util.spec_from_file_location(f'conftest_{folder or "root"}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_photos, _releases = suite_helpers(), suite_helpers('prep')
ASTRONAUT_POINTS, GRACE_HOPPER_POINTS = _photos._ASTRONAUT_POINTS, _photos._GRACE_HOPPER_POINTS
astronaut, grace_hopper, place = _photos._astronaut, _photos._grace_hopper, _photos._place
LANDMARK_HEADER, jpeg_bytes, write_counted_table = (_releases.LANDMARK_HEADER, _releases.jpeg_bytes,
                                                    _releases.write_counted_table)


def write_synthetic_celeba(root, count, seed=0):
    """``count`` wild and aligned images with official-format annotations; 90 % train, 5 % val, 5 % test."""
    rng = random.Random(seed)
    photos = [(astronaut(), ASTRONAUT_POINTS), (grace_hopper(), GRACE_HOPPER_POINTS)]
    for folder in ('img_celeba', 'img_align_celeba', 'Anno', 'Eval'):
        os.makedirs(osp.join(root, folder), exist_ok=True)
    landmarks = {}
    for index in range(1, count + 1):
        name = f'{index:06d}.jpg'
        photo, points = photos[index % 2]
        scale = rng.uniform(0.5, 1.0)
        photo_width, photo_height = round(photo.shape[1] * scale), round(photo.shape[0] * scale)
        width, height = max(photo_width, rng.randint(400, 800)), max(photo_height, rng.randint(450, 900))
        offset = rng.randint(0, width - photo_width), rng.randint(0, height - photo_height)
        canvas, moved = place(photo, points, (width, height), offset, scale, seed=index)
        with open(osp.join(root, 'img_celeba', name), 'wb') as f:
            f.write(jpeg_bytes(canvas, quality=rng.randint(85, 95)))
        landmarks[name] = [value for point in moved for value in point]
        aligned = np.array(Image.fromarray(canvas).resize((178, 218), Image.Resampling.BICUBIC))
        with open(osp.join(root, 'img_align_celeba', name), 'wb') as f:
            f.write(jpeg_bytes(aligned))
    write_counted_table(osp.join(root, 'Anno', 'list_landmarks_celeba.txt'), LANDMARK_HEADER, landmarks)
    with open(osp.join(root, 'Eval', 'list_eval_partition.txt'), 'w') as f:
        for index, name in enumerate(landmarks):
            f.write(f'{name} {0 if index % 20 < 18 else 1 + index % 2}\n')


def time_preparation(root, out, protocol, workers, save_png=False):
    """Wall seconds of preparing every split (output of the script silenced)."""
    argv = ['--root', root, '--protocol', protocol, '--out', out, '--workers', str(workers)]
    argv += ['--save-png'] if save_png else []
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert prepare_celeba.run(build_parser().parse_args(argv)) == 0
    return time.perf_counter() - start


def samples_per_second(data, workers, batch_size=16):
    loader = DataLoader(data, batch_size=batch_size, shuffle=True, num_workers=workers,
                        multiprocessing_context='fork' if workers else None, persistent_workers=bool(workers))
    for _ in loader:  # warm-up: worker start-up, page cache
        pass
    start = time.perf_counter()
    count = sum(len(batch['gt_path']) for batch in loader)
    return count / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--images', type=int, default=2000, help='synthetic CelebA images (default: 2000)')
    parser.add_argument('--workers', type=int, nargs='+', default=[1, 2], help='preparation workers to time')
    parser.add_argument('--keep', help='build in this folder and keep it (default: a temporary folder)')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = args.keep or scratch
        root = osp.join(work, 'CelebA')
        start = time.perf_counter()
        write_synthetic_celeba(root, args.images)
        seconds = time.perf_counter() - start
        print(f'synthetic release: {args.images} wild + {args.images} aligned JPEGs in {seconds:.1f} s')

        print('\n| protocol | workers | seconds | images/s |\n|---|---|---|---|')
        for protocol in ('wild', 'aligned'):
            for workers in args.workers:
                seconds = time_preparation(root, osp.join(work, f'out_{protocol}_{workers}'), protocol, workers)
                print(f'| {protocol} | {workers} | {seconds:.1f} | {args.images / seconds:.0f} |')
        with_png = osp.join(work, 'out_wild_png')
        seconds = time_preparation(root, with_png, 'wild', args.workers[-1], save_png=True)
        print(f'| wild, --save-png | {args.workers[-1]} | {seconds:.1f} | {args.images / seconds:.0f} |')

        torch.set_num_threads(1)
        train = osp.join(with_png, 'train')
        sources = {'LMDB': (osp.join(train, 'HR.lmdb'), osp.join(train, 'LR_x8.lmdb')),
                   'PNG folders': (osp.join(train, 'HR'), osp.join(train, 'LR_bicubic'))}
        print('\n| storage | LR | DataLoader workers | samples/s |\n|---|---|---|---|')
        for storage, (hr, lr) in sources.items():
            for lr_source in ('stored', 'on the fly'):
                opt = {'scale': 8, 'phase': 'train', 'dataroot_gt': hr}
                if lr_source == 'stored':
                    opt['dataroot_lq'] = lr
                for workers in (0, 2):
                    rate = samples_per_second(PairedFaceDataset(opt), workers)
                    print(f'| {storage} | {lr_source} | {workers} | {rate:.0f} |')


if __name__ == '__main__':
    main()
