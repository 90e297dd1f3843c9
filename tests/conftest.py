"""Shared test fixtures. ``sfmnet_plugin`` is imported first: it makes basicsr importable."""
import ast
import os
import sys

# Test subprocesses run tiny networks: one OpenMP thread each, unless the caller chose otherwise. With more threads
# than free cores (a busy CI runner, a training next to the suite) each forward pass waits on descheduled threads.
os.environ.setdefault('OMP_NUM_THREADS', '1')

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

import sfmnet_plugin  # noqa: E402,F401  (compatibility fixes and registrations before any basicsr import)

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
    """One intra-op thread for the whole session: the tests' forward passes are tiny, and on a busy 2-core machine
    more threads only add contention (seconds instead of milliseconds per call)."""
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
def golden_lr_face():
    """The 16 x 16 x 3 uint8 LR face of the golden outputs (``tests/data/golden/lr_face_16.png``)."""
    return np.asarray(Image.open(os.path.join(REPO_ROOT, 'tests', 'data', 'golden', 'lr_face_16.png')).convert('RGB'))


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
