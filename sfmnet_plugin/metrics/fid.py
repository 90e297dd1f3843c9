"""FID (Fréchet Inception Distance) of a set of restored faces against a reference set, as the field computes it.

SPARNetHD's paper scores 512x512 restoration with FID, also on real photos without ground truth. FID is a
property of a *set* of images, so it is not a registered per-image metric: :class:`FidScorer` collects features
image by image (the benchmark feeds it each method's outputs) and compares their statistics with a reference.

The definition is pytorch-fid's (and BasicSR's, which copies it), so that numbers can be compared with published
ones: the FID Inception network (TensorFlow's 2015-12-05 Inception v3, ported as
``pt_inception-2015-12-05-6726825d.pth``); RGB in [0, 1] resized to 299x299 bilinearly (``align_corners=False``)
and scaled to [-1, 1]; the 2048-D pool3 features; mean and covariance (``np.cov``, ddof 1) per set; and

    FID = ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))

with the matrix square root of ``scipy.linalg.sqrtm`` (BasicSR's :func:`basicsr.metrics.fid.calculate_fid`).
The network is BasicSR's :class:`~basicsr.archs.inception.InceptionV3`; its weights are read from a local file
(:func:`sfmnet_plugin.utils.pretrained.resolve_pretrained_file`), never downloaded. FID is biased by the set size
(it falls as the sets grow): compare only numbers computed on sets of the same size, ideally the same images.

A reference is a folder of images, an LMDB (``*.lmdb`` with ``meta_info.txt``) or saved statistics (``.npz`` with
``mu`` and ``sigma``, pytorch-fid's ``--save-stats`` format, written by :func:`save_fid_statistics`).
"""
from os import path as osp
from unittest import mock

import numpy as np
import torch
from basicsr.archs import inception as basicsr_inception
from basicsr.metrics.fid import calculate_fid
from torchvision import models

from sfmnet_plugin.data.image_io import decode_rgb, list_image_files
from sfmnet_plugin.data.lmdb_reader import read_meta_info
from sfmnet_plugin.utils.atomic import atomic_write
from sfmnet_plugin.utils.lmdb_env import open_shared_lmdb
from sfmnet_plugin.utils.pretrained import PretrainedFile, resolve_pretrained_file, warn_random_weights
from sfmnet_plugin.utils.safe_loading import UnsafeOrInvalidFileError, load_torch_file

FID_INCEPTION_WEIGHTS = PretrainedFile(osp.basename(basicsr_inception.FID_WEIGHTS_URL),
                                       basicsr_inception.FID_WEIGHTS_URL)
FID_FEATURE_DIM = 2048


class FidError(ValueError):
    """A reference set or statistics file that cannot be used; the message names it."""


def _fid_backbone(state_dict):
    """BasicSR's ``fid_inception_v3`` without its download: the same patched Inception v3, from ``state_dict``."""
    network = models.inception_v3(num_classes=1008, aux_logits=False, weights=None, init_weights=state_dict is None)
    for name, block, arguments in (('Mixed_5b', 'FIDInceptionA', (192, 32)), ('Mixed_5c', 'FIDInceptionA', (256, 64)),
                                   ('Mixed_5d', 'FIDInceptionA', (288, 64)), ('Mixed_6b', 'FIDInceptionC', (768, 128)),
                                   ('Mixed_6c', 'FIDInceptionC', (768, 160)), ('Mixed_6d', 'FIDInceptionC', (768, 160)),
                                   ('Mixed_6e', 'FIDInceptionC', (768, 192)), ('Mixed_7b', 'FIDInceptionE_1', (1280,)),
                                   ('Mixed_7c', 'FIDInceptionE_2', (2048,))):
        setattr(network, name, getattr(basicsr_inception, block)(*arguments))
    if state_dict is not None:
        network.load_state_dict(state_dict)
    return network


def fid_inception(weights_path=None, device='cpu', random_weights_for_tests=False,
                  option_name='val.fid.weights_path'):
    """BasicSR's FID InceptionV3 (pool3 output, 299x299 bilinear resize, input in [0, 1]) on ``device``.

    Args:
        weights_path (str, optional): local ``pt_inception-2015-12-05-6726825d.pth``; default:
            ``$SFMNET_PRETRAINED_DIR`` or ``torch.hub.get_dir()/checkpoints``; missing -> FileNotFoundError.
        random_weights_for_tests (bool): a randomly initialised network of the same architecture (warns; the
            values are meaningless), for offline tests.
        option_name (str): the option (or ``--flag``) that sets ``weights_path``, for the missing-file message.
    """
    if random_weights_for_tests:
        warn_random_weights('FID Inception')
        state_dict = None
    else:
        path = resolve_pretrained_file(FID_INCEPTION_WEIGHTS, weights_path, option_name=option_name)
        state_dict = load_torch_file(path, what='FID Inception weights')  # corrupt or NaN: one line naming it
    # BasicSR's InceptionV3 builds its backbone with the module's fid_inception_v3(), which downloads the weights;
    # for the duration of the constructor it builds ours instead.
    try:
        with mock.patch.object(basicsr_inception, 'fid_inception_v3', lambda: _fid_backbone(state_dict)):
            network = basicsr_inception.InceptionV3([3], resize_input=True, normalize_input=True)
    except (RuntimeError, KeyError, TypeError) as error:  # another network's weights
        cause = str(error).splitlines()[0]
        raise UnsafeOrInvalidFileError(f'FID Inception weights {path}: not the weights of the FID Inception ({cause}); '
                                       f'use {FID_INCEPTION_WEIGHTS.filename}.') from error
    return network.eval().to(device)


@torch.no_grad()
def inception_features(network, images, batch_size=16):
    """(N, 2048) float64 pool3 features of uint8 RGB HxWx3 images (any sizes; consecutive equal sizes batched)."""
    device = next(network.parameters()).device
    features, batch = [], []

    def flush():
        tensor = torch.from_numpy(np.stack(batch)).to(device).permute(0, 3, 1, 2).float() / 255.
        features.append(network(tensor)[0].flatten(1).double().cpu().numpy())
        batch.clear()

    for image in images:
        if batch and (len(batch) == batch_size or image.shape != batch[0].shape):
            flush()
        batch.append(np.ascontiguousarray(image))
    if batch:
        flush()
    return np.concatenate(features) if features else np.zeros((0, FID_FEATURE_DIM))


def feature_statistics(features):
    """Mean and covariance (ddof 1) of (N, D) features, as pytorch-fid computes them; needs N >= 2."""
    features = np.asarray(features, np.float64)
    if len(features) < 2:
        raise FidError(f'FID needs at least two images per set, got {len(features)}.')
    return features.mean(0), np.cov(features, rowvar=False)


def frechet_distance(statistics, reference_statistics):
    """FID between two ``(mu, sigma)`` pairs (BasicSR's ``calculate_fid``)."""
    return float(calculate_fid(*statistics, *reference_statistics))


def save_fid_statistics(path, statistics):
    """Write ``(mu, sigma)`` as ``.npz`` with keys ``mu`` and ``sigma`` (pytorch-fid's format), atomically and never
    through a link (:func:`~sfmnet_plugin.utils.atomic.atomic_write`)."""
    def write(partial):
        with open(partial, 'wb') as f:  # a file object: np.savez would append .npz to a name
            np.savez(f, mu=statistics[0], sigma=statistics[1])

    atomic_write(path, write)


def load_fid_statistics(path):
    """``(mu, sigma)`` from a ``.npz`` with keys ``mu`` and ``sigma``."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            mu, sigma = stored['mu'], stored['sigma']
    except (OSError, ValueError, KeyError) as error:
        raise FidError(f'FID statistics {path}: expected an .npz with arrays "mu" and "sigma" ({error}).') from error
    if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
        raise FidError(f'FID statistics {path}: mu {mu.shape} and sigma {sigma.shape} do not fit (D and DxD).')
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):  # as every weight file: the score would be NaN
        raise FidError(f'FID statistics {path}: refused, mu or sigma holds NaN or inf values; compute the statistics '
                       'again from the reference images.')
    return mu.astype(np.float64), sigma.astype(np.float64)


def reference_images(path):
    """Yield the uint8 RGB images of a folder (sorted by name) or an LMDB (``meta_info.txt`` order)."""
    if path.endswith('.lmdb') or osp.isfile(osp.join(path, 'meta_info.txt')):
        keys = list(read_meta_info(path))
        env = open_shared_lmdb(path)
        with env.begin(write=False) as txn:
            for key in keys:
                content = txn.get(key.encode('ascii'))
                if content is None:
                    raise FidError(f'FID reference {path}: key {key!r} of meta_info.txt is not stored.')
                yield decode_rgb(content, f'{path}:{key}')[0]
        return
    for file_path in list_image_files(path).values():
        with open(file_path, 'rb') as f:
            yield decode_rgb(f.read(), file_path)[0]


def reference_statistics(path, network):
    """``(mu, sigma)`` of a reference: a folder, an LMDB or saved statistics (``.npz``)."""
    if path.endswith('.npz'):
        return load_fid_statistics(path)
    if not osp.isdir(path):
        raise FidError(f'FID reference {path}: not found; give a folder of images, an LMDB or an .npz of statistics.')
    try:
        return feature_statistics(inception_features(network, reference_images(path)))
    except (OSError, ValueError, KeyError) as error:
        if isinstance(error, FidError):
            raise
        raise FidError(f'FID reference {path}: {error}') from error


class FidScorer:
    """Collect the features of one or more sets image by image, then their FID against one reference."""

    def __init__(self, reference, weights_path=None, device='cpu', random_weights_for_tests=False,
                 option_name='val.fid.weights_path'):
        self.network = fid_inception(weights_path, device, random_weights_for_tests, option_name)
        self.reference = reference_statistics(reference, self.network)
        self.features = {}

    def add(self, set_name, rgb):
        """Add one uint8 RGB image to the set ``set_name``."""
        self.features.setdefault(set_name, []).append(inception_features(self.network, [rgb])[0])

    def fid(self, set_name):
        return self.fid_of(np.asarray(self.features.get(set_name, [])))

    def fid_of(self, features):
        """FID of (N, D) features (e.g. gathered from several processes) against the reference."""
        statistics = feature_statistics(features)
        if statistics[0].shape != self.reference[0].shape:
            raise FidError(f'FID reference statistics have {len(self.reference[0])} features, the network gives '
                           f'{len(statistics[0])}.')
        return frechet_distance(statistics, self.reference)

