"""Shared test fixtures. ``sfmnet_plugin`` is imported first: it makes basicsr importable."""
import ast
import os
import shutil
import subprocess
import sys
import time
from os import path as osp

# Test subprocesses run tiny networks: one OpenMP thread each, unless the caller chose otherwise. With more threads
# than free cores (a busy CI runner, a training next to the suite) each forward pass waits on descheduled threads.
os.environ.setdefault('OMP_NUM_THREADS', '1')

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from PIL import Image  # noqa: E402

import sfmnet_plugin  # noqa: E402,F401  (compatibility fixes and registrations before any basicsr import)
from sfmnet_plugin.demo.photo_sources import public_domain_photos  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='session')
def repo_root():
    return REPO_ROOT


@pytest.fixture
def python_executable():
    """The interpreter running the tests, for launching scripts in subprocesses."""
    return sys.executable


@pytest.fixture(scope='session', autouse=True)
def single_torch_thread():
    """One intra-op thread for the whole session: the tests' forward passes are tiny, and beside other processes
    more threads only add contention (every parallel region waits on its slowest, descheduled thread)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _seeded_state_dict(reference: dict, seed: int = 0, keep=()) -> dict:
    """Deterministic float64 weights for every tensor of ``reference`` (a state dict), in its key order.

    The golden outputs in ``tests/data/golden/`` were made by loading these weights into the official networks
    (``tests/data/golden/README.md`` gives the rule in words): weights ``N(0, 1) / sqrt(fan_in)``, 1-D ``*weight``
    tensors ``1 + 0.1 N(0, 1)``, other 1-D tensors ``0.1 N(0, 1)``, running variances ``0.5 + |N(0, 1)|``, integer
    tensors and the keys in ``keep`` unchanged (e.g. fixed wavelet filters).
    """
    generator = torch.Generator().manual_seed(seed)
    seeded = {}
    for key, tensor in reference.items():
        if key in keep or not tensor.is_floating_point():
            seeded[key] = tensor.detach().clone()
            continue
        noise = torch.randn(tensor.shape, generator=generator, dtype=torch.float64)
        if key.endswith('running_var'):
            values = 0.5 + noise.abs()
        elif tensor.dim() > 1:
            values = noise / (tensor[0].numel() ** 0.5)
        elif key.endswith('weight'):
            values = 1.0 + 0.1 * noise
        else:
            values = 0.1 * noise
        seeded[key] = values
    return seeded


@pytest.fixture(scope='session')
def seeded_state_dict():
    """``seeded_state_dict(reference, seed=0, keep=())``: see :func:`_seeded_state_dict`."""
    return _seeded_state_dict


@pytest.fixture(scope='session')
def public_domain_face_boxes():
    """Photo key -> face box ``(left, top, side)`` in the two public-domain photos the tests use."""
    return _PUBLIC_DOMAIN_FACE_BOXES


@pytest.fixture(scope='session')
def golden_lr_face():
    """The 16 x 16 x 3 uint8 LR face of the golden outputs (``tests/data/golden/lr_face_16.png``)."""
    return np.asarray(Image.open(os.path.join(REPO_ROOT, 'tests', 'data', 'golden', 'lr_face_16.png')).convert('RGB'))


# Public-domain photos: ``skimage.data.astronaut()`` and matplotlib's ``grace_hopper.jpg``, shipped with installed
# packages. Landmarks (left eye, right eye, nose, left mouth corner, right mouth corner) as (x, y), read off the photos.
_ASTRONAUT_POINTS = ((204, 101), (246, 102), (225, 126), (205, 141), (244, 142))
_GRACE_HOPPER_POINTS = ((222, 190), (305, 186), (267, 240), (238, 277), (297, 276))
# Face boxes (left, top, side) in the two photos.
_PUBLIC_DOMAIN_FACE_BOXES = {'astronaut': (150, 40, 150), 'grace_hopper': (150, 110, 230)}


def _public_domain_photo(key):
    return np.array(next(photo.image for photo in public_domain_photos() if photo.key == key))


def _astronaut():
    return _public_domain_photo('astronaut')


def _grace_hopper():
    return _public_domain_photo('grace_hopper')


def _smooth_noise(height, width, seed):
    """A deterministic smooth colour image (upsampled random pixels), compressible like a photo."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(max(2, height // 32), max(2, width // 32), 3), dtype=np.uint8)
    return np.array(Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC))


def _place(photo, points, canvas_size, offset, scale=1.0, seed=0):
    """Paste ``photo`` (resized by ``scale``) at ``offset`` on a noise canvas; returns (canvas, moved points)."""
    if scale != 1.0:
        photo = np.array(Image.fromarray(photo).resize(
            (round(photo.shape[1] * scale), round(photo.shape[0] * scale)), Image.Resampling.BICUBIC))
    width, height = canvas_size
    canvas = _smooth_noise(height, width, seed)
    x, y = offset
    canvas[y:y + photo.shape[0], x:x + photo.shape[1]] = photo
    # PIL's resize maps pixel centres, so a point moves as (p + 0.5) * scale - 0.5.
    moved = tuple((round((px + 0.5) * scale - 0.5 + x), round((py + 0.5) * scale - 0.5 + y)) for px, py in points)
    return canvas, moved


def _aligned_public_domain_faces(size=128):
    """RGB ``size`` x ``size`` crops aligned on the face template: Eileen Collins (the astronaut), the same
    photo jittered and mirrored (the same person, another crop), and Grace Hopper (another person)."""
    from sfmnet_plugin.faces import Jitter, align_face

    astro, grace = Image.fromarray(_astronaut()), Image.fromarray(_grace_hopper())
    jitter = Jitter(degrees=5, scale=1.05, shift=(0.03, -0.02), mirrored=True)
    return {'astronaut': np.array(align_face(astro, _ASTRONAUT_POINTS, size)),
            'astronaut_jittered': np.array(align_face(astro, _ASTRONAUT_POINTS, size, jitter)),
            'grace_hopper': np.array(align_face(grace, _GRACE_HOPPER_POINTS, size))}


def _real_faces(size):
    """The two public-domain faces (astronaut, Grace Hopper) as a 2 x 3 x size x size batch in [0, 1]."""
    faces = []
    for photo in public_domain_photos():
        left, top, side = _PUBLIC_DOMAIN_FACE_BOXES[photo.key]
        face = photo.image.convert('RGB').resize((size, size), Image.BICUBIC, box=(left, top, left + side, top + side))
        faces.append(torch.from_numpy(np.asarray(face, dtype=np.float32) / 255.).permute(2, 0, 1))
    return torch.stack(faces)


@pytest.fixture(scope='session')
def astronaut():
    """``astronaut()``: the astronaut photo as a fresh RGB uint8 array."""
    return _astronaut


@pytest.fixture(scope='session')
def grace_hopper():
    """``grace_hopper()``: Grace Hopper's photo as a fresh RGB uint8 array."""
    return _grace_hopper


@pytest.fixture(scope='session')
def astronaut_points():
    """The 5 landmarks of the astronaut photo."""
    return _ASTRONAUT_POINTS


@pytest.fixture(scope='session')
def grace_hopper_points():
    """The 5 landmarks of Grace Hopper's photo."""
    return _GRACE_HOPPER_POINTS


@pytest.fixture(scope='session')
def smooth_noise():
    """``smooth_noise(height, width, seed)``: see :func:`_smooth_noise`."""
    return _smooth_noise


@pytest.fixture(scope='session')
def place():
    """``place(photo, points, canvas_size, offset, scale=1.0, seed=0)``: see :func:`_place`."""
    return _place


@pytest.fixture(scope='session')
def aligned_public_domain_faces():
    """``aligned_public_domain_faces(size=128)``: see :func:`_aligned_public_domain_faces`."""
    return _aligned_public_domain_faces


@pytest.fixture(scope='session')
def real_faces():
    """``real_faces(size)``: see :func:`_real_faces`."""
    return _real_faces


@pytest.fixture(scope='session')
def count_parameters():
    """``count_parameters(module)``: the library's parameter counter."""
    from sfmnet_plugin.utils.profiling import count_parameters

    return count_parameters


@pytest.fixture
def empty_weight_locations(tmp_path, monkeypatch):
    """No pretrained file anywhere: an empty torch hub cache and no $SFMNET_PRETRAINED_DIR."""
    from sfmnet_plugin.utils.pretrained import PRETRAINED_DIR_ENV_VAR

    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    monkeypatch.delenv(PRETRAINED_DIR_ENV_VAR, raising=False)
    return tmp_path


# Runs of the launchers in subprocesses (one training per process: BasicSR's logger keeps the first run's log file
# for the whole process).


def _smooth_random_image(rng, size):
    """A blurred random RGB image: smooth enough that a network can learn something in a few steps."""
    coarse = rng.integers(0, 256, (size // 4, size // 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((size, size), Image.BICUBIC))


def _write_paired_folders(root, count, gt_size, scale, seed=0):
    """Write ``root/gt/*.png`` and ``root/lq/*.png`` (PIL bicubic x``scale``) and return ``root``."""
    rng = np.random.default_rng(seed)
    for sub in ('gt', 'lq'):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    for i in range(count):
        gt = Image.fromarray(_smooth_random_image(rng, gt_size))
        gt.save(osp.join(root, 'gt', f'{i:04d}.png'))
        gt.resize((gt_size // scale, gt_size // scale), Image.BICUBIC).save(osp.join(root, 'lq', f'{i:04d}.png'))
    return root


def _set_dotted(options, changes):
    """Set ``options[a][b][c] = value`` for every ``a__b__c=value`` in ``changes``; returns ``options``."""
    for dotted, value in changes.items():
        *parents, last = dotted.split('__')
        node = options
        for key in parents:
            node = node[key]
        node[last] = value
    return options


def _write_yaml(path, options):
    with open(path, 'w', encoding='utf-8') as f:
        yaml.safe_dump(options, f, sort_keys=False)
    return path


def _launcher_env(root_path):
    """Environment for a launcher subprocess: outputs under ``root_path``, 1 thread per process."""
    env = dict(os.environ, SFMNET_ROOT_PATH=str(root_path), OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    env.pop('CUDA_VISIBLE_DEVICES', None)
    return env


def _run_launcher(args, root_path, cwd=REPO_ROOT, timeout=300):
    """Run ``python *args`` and fail the test with its output when it does not exit 0."""
    result = subprocess.run([sys.executable, *args], cwd=cwd, env=_launcher_env(root_path), capture_output=True,
                            text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f'{args} exited {result.returncode}\n--- stdout\n{result.stdout[-4000:]}\n'
                             f'--- stderr\n{result.stderr[-4000:]}')
    return result


def _free_port():
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


def _wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f'timed out after {timeout} s waiting for {what}')


def _read_training_log(experiment_dir):
    logs = sorted(name for name in os.listdir(experiment_dir) if name.startswith('train_') and name.endswith('.log'))
    assert logs, f'no training log in {experiment_dir}'
    with open(osp.join(experiment_dir, logs[-1]), encoding='utf-8') as f:
        return f.read()


def _write_train_val_faces(root, train_count, gt_size, scale):
    """``root/train`` (``train_count`` pairs, seed 0) and ``root/val`` (2 pairs, seed 1) of real-face pairs."""
    _write_real_face_pairs(osp.join(root, 'train'), train_count, gt_size, scale, seed=0)
    _write_real_face_pairs(osp.join(root, 'val'), 2, gt_size, scale, seed=1)
    return root


def _build_seeded_model(opt, seed=0):
    """BasicSR's ``build_model`` of a copy of ``opt`` after ``torch.manual_seed(seed)`` (for in-process tests)."""
    import copy

    import torch
    from basicsr.models import build_model

    torch.manual_seed(seed)
    return build_model(copy.deepcopy(opt))


def _write_real_face_pairs(root, count, gt_size, scale, seed=0):
    """``count`` jittered face crops (``gt_size`` square, PIL bicubic) of the two public-domain faces,
    with their PIL-bicubic LR in ``root/lq``: tiny real-face training data."""
    rng = np.random.default_rng(seed)
    from sfmnet_plugin.demo.photo_sources import public_domain_photos

    photos = [(photo.image, _PUBLIC_DOMAIN_FACE_BOXES[photo.key]) for photo in public_domain_photos()]
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



_TOY_SCALE = 2


def _toy_base_options(data_root):
    """A tiny BasicSR run: SRVGGNetCompact on 32x32 generated pairs, validation and checkpoints every 2 iters."""
    def dataset(split, **extra):
        return {'name': f'toy_{split}', 'type': 'PairedImageDataset', 'dataroot_gt': f'{data_root}/{split}/gt',
                'dataroot_lq': f'{data_root}/{split}/lq', 'io_backend': {'type': 'disk'}, **extra}

    return {
        'name': 'toy_base', 'model_type': 'SRModel', 'scale': _TOY_SCALE, 'num_gpu': 'auto', 'manual_seed': 0,
        'datasets': {
            'train': dataset('train', gt_size=32, use_hflip=True, use_rot=False, num_worker_per_gpu=0,
                             batch_size_per_gpu=2, dataset_enlarge_ratio=1, prefetch_mode=None),
            'val': dataset('val'),
        },
        'network_g': {'type': 'SRVGGNetCompact', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_conv': 2,
                      'upscale': _TOY_SCALE, 'act_type': 'prelu'},
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': {'optim_g': {'type': 'Adam', 'lr': 1e-3, 'betas': [0.9, 0.99]},
                  'scheduler': {'type': 'MultiStepLR', 'milestones': [100], 'gamma': 0.5},
                  'total_iter': 4, 'warmup_iter': -1,
                  'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'}},
        'val': {'val_freq': 2, 'save_img': False,
                'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': False}}},
        'logger': {'print_freq': 1, 'save_checkpoint_freq': 2, 'use_tb_logger': True,
                   'wandb': {'project': None, 'resume_id': None}},
    }

@pytest.fixture(scope='session')
def write_paired_folders():
    """``write_paired_folders(root, count, gt_size, scale, seed=0)``: see :func:`_write_paired_folders`."""
    return _write_paired_folders


@pytest.fixture(scope='session')
def set_dotted():
    """``set_dotted(options, changes)``: see :func:`_set_dotted`."""
    return _set_dotted


@pytest.fixture(scope='session')
def write_yaml():
    """``write_yaml(path, options)``: ``options`` as YAML in ``path``; returns ``path``."""
    return _write_yaml


@pytest.fixture(scope='session')
def launcher_env():
    """``launcher_env(root_path)``: see :func:`_launcher_env`."""
    return _launcher_env


@pytest.fixture(scope='session')
def run_launcher():
    """``run_launcher(args, root_path, cwd=REPO_ROOT, timeout=300)``: see :func:`_run_launcher`."""
    return _run_launcher


@pytest.fixture(scope='session')
def free_port():
    """``free_port()``: see :func:`_free_port`."""
    return _free_port


@pytest.fixture(scope='session')
def wait_for():
    """``wait_for(predicate, timeout, what)``: poll ``predicate`` until true, or fail after ``timeout`` s."""
    return _wait_for


@pytest.fixture(scope='session')
def read_training_log():
    """``read_training_log(experiment_dir)``: the text of the last training log of a run."""
    return _read_training_log


@pytest.fixture(scope='session')
def write_train_val_faces():
    """``write_train_val_faces(root, train_count, gt_size, scale)``: see :func:`_write_train_val_faces`."""
    return _write_train_val_faces


@pytest.fixture(scope='session')
def build_seeded_model():
    """``build_seeded_model(opt, seed=0)``: see :func:`_build_seeded_model`."""
    return _build_seeded_model


@pytest.fixture(scope='session')
def write_real_face_pairs():
    """``write_real_face_pairs(root, count, gt_size, scale, seed=0)``: see :func:`_write_real_face_pairs`."""
    return _write_real_face_pairs


# The demo with tiny networks and face set (the demo's own tests and the wheel's).
_TINY_DEMO_PRESETS = {  # a few thousand parameters each (SPARNet's hourglass attention keeps 64 channels)
    'SFMNet': ['network_g:num_feat=4', 'network_g:num_heads=1'],
    'SPARNet': ['network_g:min_ch=4', 'network_g:max_ch=8'],
    'SMLNet': ['network_g:num_feat=6', 'network_g:num_heads=1'],
    'WFEN': ['network_g:min_ch=4', 'network_g:res_depth=1'],
    'CTCNet': ['network_g:num_feat=2'],
    'UFSRNet': ['network_g:num_feat=4'],
    'SISN': ['network_g:num_feat=4', 'network_g:num_groups=1', 'network_g:num_blocks=1'],
    'DIC': ['network_g:num_features=4', 'network_g:hg_num_feature=8', 'network_g:num_steps=2',
            'logger:print_freq=1'],  # every iteration's losses in the log (the DIC demo test reads l_heatmap)
}


def _write_tiny_face_set(faces_dir, cache_dir=None, jitter=0, seed=0):
    """What gather_faces writes (faces/{train,test}/HR of 128x128 real face crops), from installed photos only."""
    for split, count in (('train', 4), ('test', 2)):
        pairs = _write_real_face_pairs(os.path.join(faces_dir, f'{split}_pairs'), count=count, gt_size=128, scale=8,
                                       seed=len(split))
        os.makedirs(os.path.join(faces_dir, split))
        shutil.move(os.path.join(pairs, 'gt'), os.path.join(faces_dir, split, 'HR'))
        shutil.rmtree(pairs)
    return f'{count} test faces'


@pytest.fixture(scope='session')
def tiny_demo_presets():
    """Network label -> option overrides that make each demo network tiny."""
    return _TINY_DEMO_PRESETS


@pytest.fixture(scope='session')
def write_tiny_face_set():
    """``write_tiny_face_set(faces_dir, ...)``: a stand-in for the demo's ``gather_faces``."""
    return _write_tiny_face_set


@pytest.fixture(scope='session')
def toy_base_options():
    """``toy_base_options(data_root)``: see :func:`_toy_base_options` (scale 2, 32 x 32 pairs)."""
    return _toy_base_options


# Files that would run code if they were unpickled: the tests of safe loading and of every tool that loads them.
class _RunsCode:
    """Unpickling this calls ``open(marker, 'w')``: the smallest code execution a test can observe."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, 'w'))


def _malicious_torch_file(path, marker, payload_key='iter'):
    torch.save({payload_key: _RunsCode(marker), 'epoch': 0}, path)
    return str(path)


@pytest.fixture(scope='session')
def code_running_object():
    """``code_running_object(marker)``: an object whose unpickling creates the file ``marker``."""
    return _RunsCode


@pytest.fixture(scope='session')
def malicious_torch_file():
    """``malicious_torch_file(path, marker, payload_key='iter')``: a torch file whose loading would create
    ``marker``; returns ``str(path)``."""
    return _malicious_torch_file


def _official_key_listing(path: str, section: str = '') -> dict:
    """``{key: (shape, dtype)}`` of one network of an official key listing (``tests/data/*_official_keys.txt``: a
    ``## <title>`` line per network, then ``key<TAB>shape<TAB>dtype`` lines), in the official order; ``section`` is the
    start of the title (the first network when empty)."""
    with open(os.path.join(REPO_ROOT, path), encoding='utf-8') as f:
        blocks = f.read().split('\n## ')[1:]
    block = next(block for block in blocks if block.startswith(section))
    layout = {}
    for line in block.splitlines()[1:]:
        if line.strip():
            key, shape, dtype = line.split('\t')
            layout[key] = (tuple(ast.literal_eval(shape)), getattr(torch, dtype))
    return layout


@pytest.fixture(scope='session')
def official_key_listing():
    """``official_key_listing(path, section='')``: see :func:`_official_key_listing`."""
    return _official_key_listing


@pytest.fixture(scope='session')
def golden_hr_input(golden_lr_face):
    """The golden LR as the SPARNet-family official loaders feed it: ``PIL.Image.resize((128, 128), BICUBIC)`` on the
    uint8 image, as a ``1 x 3 x 128 x 128`` float64 tensor in [0, 1] (``ToTensor``; [-1, 1] is the network's job)."""
    up = Image.fromarray(golden_lr_face).resize((128, 128), Image.BICUBIC)
    return torch.from_numpy(np.asarray(up).astype(np.float64) / 255).permute(2, 0, 1)[None]


@pytest.fixture(scope='session')
def seeded_golden_network(seeded_state_dict):
    """``seeded_golden_network(network, official_layout, golden_path)``: ``network`` (a module whose state dict has the
    official names) with the golden file's seeded weights, drawn in the official key order, in float64 and eval mode."""
    def load(network, official_layout, golden_path):
        reference = {key: torch.zeros(shape, dtype=dtype) for key, (shape, dtype) in official_layout.items()}
        network.load_state_dict(seeded_state_dict(reference, seed=int(np.load(golden_path)['seed'])), strict=True)
        return network.double().eval()
    return load
