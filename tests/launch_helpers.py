"""Helpers for tests that run the launchers in subprocesses (one training per process: BasicSR's
logger keeps the first run's log file for the whole process)."""
import os
import subprocess
import sys
import time
from os import path as osp

import numpy as np
import yaml
from PIL import Image

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def smooth_random_image(rng, size):
    """A blurred random RGB image: smooth enough that a network can learn something in a few steps."""
    coarse = rng.integers(0, 256, (size // 4, size // 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((size, size), Image.BICUBIC))


def write_paired_folders(root, count, gt_size, scale, seed=0):
    """Write ``root/gt/*.png`` and ``root/lq/*.png`` (PIL bicubic x``scale``) and return ``root``."""
    rng = np.random.default_rng(seed)
    for sub in ('gt', 'lq'):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    for i in range(count):
        gt = Image.fromarray(smooth_random_image(rng, gt_size))
        gt.save(osp.join(root, 'gt', f'{i:04d}.png'))
        gt.resize((gt_size // scale, gt_size // scale), Image.BICUBIC).save(osp.join(root, 'lq', f'{i:04d}.png'))
    return root


def set_dotted(options, changes):
    """Set ``options[a][b][c] = value`` for every ``a__b__c=value`` in ``changes``; returns ``options``."""
    for dotted, value in changes.items():
        *parents, last = dotted.split('__')
        node = options
        for key in parents:
            node = node[key]
        node[last] = value
    return options


def write_yaml(path, options):
    with open(path, 'w', encoding='utf-8') as f:
        yaml.safe_dump(options, f, sort_keys=False)
    return path


def launcher_env(root_path):
    """Environment for a launcher subprocess: outputs under ``root_path``, 1 thread per process."""
    env = dict(os.environ, SFMNET_ROOT_PATH=str(root_path), OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    env.pop('CUDA_VISIBLE_DEVICES', None)
    return env


def run_launcher(args, root_path, cwd=REPO_ROOT, timeout=300):
    """Run ``python *args`` and fail the test with its output when it does not exit 0."""
    result = subprocess.run([sys.executable, *args], cwd=cwd, env=launcher_env(root_path), capture_output=True,
                            text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f'{args} exited {result.returncode}\n--- stdout\n{result.stdout[-4000:]}\n'
                             f'--- stderr\n{result.stderr[-4000:]}')
    return result


def free_port():
    """A TCP port nobody listens on now, for a torchrun rendezvous (fixed ports collide between runs).

    Picked below the kernel's ephemeral range: until torchrun binds it, the torchrun of another test (the suite runs
    two at once) opens connections and gloo listeners on ephemeral ports, and one of them could take a port picked
    from that range. SystemRandom: the tests seed ``random``, and two workers must not draw the same port."""
    import random
    import socket

    try:
        with open('/proc/sys/net/ipv4/ip_local_port_range', encoding='ascii') as f:
            ephemeral_start = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_start = 32768  # Linux's default; other systems start theirs higher
    draw = random.SystemRandom().randrange
    while True:
        # port 0, the kernel's choice, where the ephemeral range leaves no room below it
        port = draw(10000, ephemeral_start) if ephemeral_start > 10000 else 0
        with socket.socket() as sock:
            try:
                sock.bind(('', port))
            except OSError:
                continue
            return sock.getsockname()[1]


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f'timed out after {timeout} s waiting for {what}')


def read_training_log(experiment_dir):
    logs = sorted(name for name in os.listdir(experiment_dir) if name.startswith('train_') and name.endswith('.log'))
    assert logs, f'no training log in {experiment_dir}'
    with open(osp.join(experiment_dir, logs[-1]), encoding='utf-8') as f:
        return f.read()


# Face boxes (left, top, side) in the two public-domain photos shipped with installed packages.
PUBLIC_DOMAIN_FACE_BOXES = {'astronaut': (150, 40, 150), 'grace_hopper': (150, 110, 230)}


def write_train_val_faces(root, train_count, gt_size, scale):
    """``root/train`` (``train_count`` pairs, seed 0) and ``root/val`` (2 pairs, seed 1) of real-face pairs."""
    write_real_face_pairs(osp.join(root, 'train'), train_count, gt_size, scale, seed=0)
    write_real_face_pairs(osp.join(root, 'val'), 2, gt_size, scale, seed=1)
    return root


def build_seeded_model(opt, seed=0):
    """BasicSR's ``build_model`` of a copy of ``opt`` after ``torch.manual_seed(seed)`` (for in-process tests)."""
    import copy

    import torch
    from basicsr.models import build_model

    torch.manual_seed(seed)
    return build_model(copy.deepcopy(opt))


def write_real_face_pairs(root, count, gt_size, scale, seed=0):
    """``count`` jittered face crops (``gt_size`` square, PIL bicubic) of the two public-domain faces,
    with their PIL-bicubic LR in ``root/lq``: tiny real-face training data."""
    rng = np.random.default_rng(seed)
    from sfmnet_plugin.demo.photo_sources import public_domain_photos

    photos = [(photo.image, PUBLIC_DOMAIN_FACE_BOXES[photo.key]) for photo in public_domain_photos()]
    for sub in ('gt', 'lq'):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    for i in range(count):
        photo, (left, top, side) = photos[i % len(photos)]
        shift = rng.uniform(-0.08, 0.08, 2) * side
        grown = side * rng.uniform(0.95, 1.1)
        box = (left + shift[0], top + shift[1], left + shift[0] + grown, top + shift[1] + grown)
        gt = photo.resize((gt_size, gt_size), Image.BICUBIC, box=box)
        if rng.random() < 0.5:
            gt = gt.transpose(Image.FLIP_LEFT_RIGHT)
        gt.save(osp.join(root, 'gt', f'face{i:03d}.png'))
        gt.resize((gt_size // scale, gt_size // scale), Image.BICUBIC).save(osp.join(root, 'lq', f'face{i:03d}.png'))
    return root
