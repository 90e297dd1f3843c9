"""DIC's hourglasses as 68-point landmark detectors (the NME metric without dlib's weights).

:func:`dic_landmark_detector` gives the detector callable that
:func:`~sfmnet_plugin.metrics.face_landmark_metric.calculate_landmark_nme` takes; it lives here, not in ``metrics/``,
because it builds networks (``archs/``) from checkpoints (``checkpoints/``), which ``metrics/`` may not import.

Two official networks predict 68 heatmaps of a face image at a quarter of its size, from the image as DIC gives it
its SR images (RGB in [0, 1] minus DIC's dataset mean):

* **the feedback hourglass of a trained DIC** (``net_g.HG``), run for one step (no feedback state). Each landmark
  is its heatmap's peak times 4, as the official DIC solver reads them (``SRLandmarkSolver.calc_nme``:
  ``get_peak_points(heatmap) * 4``, the first maximum in row-major order). Its checkpoint may be a DIC trained with
  the plugin (``params``, with its ``network_g``), an official DIC checkpoint (its training dict with
  ``state_dict``, or the bare state dict, with or without ``module.``), or the official pretrained hourglass alone
  (``FB_HG_68_CelebA.pth``); the widths are read off the weights.
* **the official evaluation network** ``HG_68_CelebA.pth`` (:class:`~sfmnet_plugin.archs.dic_blocks.StackedHourGlass`:
  4 stacks with BatchNorm; a bare state dict, loaded strictly as ``eval_landmark.py`` loads it). Its landmarks are
  read as ``eval_landmark.py`` reads them: the peak times 4, moved one pixel along each axis towards the
  second-highest value of the heatmap (so -1 and 125 are possible on a 128-pixel face).
"""
import functools
from collections.abc import Callable
from os import path as osp

import numpy as np
import torch

from sfmnet_plugin.archs.dic_arch import DIC_RGB_MEAN
from sfmnet_plugin.archs.dic_blocks import FeedbackHourGlass, StackedHourGlass
from sfmnet_plugin.checkpoints.conversion import strip_module_prefix, unwrap_checkpoint
from sfmnet_plugin.checkpoints.io import load_checkpoint_file

HEATMAP_STRIDE = 4
# The image side must let the depth-4 hourglass halve its quarter-size features four times.
SIZE_MULTIPLE = 64


def hourglass_state_dict(checkpoint, path):
    """The feedback hourglass's state dict (no prefix) inside a loaded checkpoint; an error naming ``path``."""
    state_dict = strip_module_prefix(unwrap_checkpoint(checkpoint))
    if any(key.startswith('HG.') for key in state_dict):
        state_dict = {key[len('HG.'):]: value for key, value in state_dict.items() if key.startswith('HG.')}
    if 'compress_in.weight' not in state_dict or 'hg_conv_out.2.weight' not in state_dict:
        raise ValueError(f'{path}: holds no DIC feedback hourglass (no HG.compress_in / hg_conv_out weights); give a '
                         'DIC checkpoint or FB_HG_68_CelebA.pth.')
    return state_dict


@functools.lru_cache(maxsize=4)
def load_dic_hourglass(path):
    """The :class:`FeedbackHourGlass` or :class:`StackedHourGlass` in ``path`` (loaded once per process), in eval
    mode on the CPU."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'landmark checkpoint {path!r} not found (a DIC checkpoint, FB_HG_68_CelebA.pth or '
                                'HG_68_CelebA.pth).')
    checkpoint = load_checkpoint_file(path, what='landmark checkpoint')
    stacked = strip_module_prefix(unwrap_checkpoint(checkpoint))
    if 'hg0_conv_pred.weight' in stacked:  # the evaluation network HG_68_CelebA.pth
        hourglass = StackedHourGlass(stacked['pre_conv_block.0.weight'].shape[0] * 4,
                                     len([k for k in stacked if k.endswith('_conv_pred.weight')]),
                                     stacked['hg0_conv_pred.weight'].shape[0])
        hourglass.load_state_dict(stacked, strict=True)
        return hourglass.eval()
    state_dict = hourglass_state_dict(checkpoint, path)
    num_keypoints = state_dict['hg_conv_out.2.weight'].shape[0]
    if num_keypoints != 68:
        raise ValueError(f'{path}: its hourglass predicts {num_keypoints} landmarks; the NME needs 68.')
    hourglass = FeedbackHourGlass(state_dict['compress_in.weight'].shape[0] // 2, num_keypoints)
    hourglass.load_state_dict(state_dict, strict=True)
    return hourglass.eval()


def dic_landmark_detector(checkpoint: str) -> Callable[[np.ndarray], np.ndarray]:
    """The NME metric's ``detector``: RGB uint8 face -> ``68 x 2`` landmarks by the hourglass in ``checkpoint``.

    The checkpoint is read now (a wrong path fails here, not at the first image). The callable is a
    :func:`functools.partial`, which BasicSR's ``calculate_metric`` can deep-copy cheaply (the loaded network is
    cached per process, not copied).
    """
    load_dic_hourglass(checkpoint)
    return functools.partial(dic_landmarks, checkpoint=checkpoint)


def dic_landmarks(rgb, checkpoint):
    """``68 x 2`` float (x, y) landmarks of an RGB uint8 face (side a multiple of 64) by DIC's hourglass."""
    height, width = rgb.shape[:2]
    if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
        raise ValueError(f'the DIC landmark detector needs images whose sides are multiples of {SIZE_MULTIPLE}, got '
                         f'{width}x{height}.')
    hourglass = load_dic_hourglass(checkpoint)
    image = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float()[None] / 255
    image = image - torch.tensor(DIC_RGB_MEAN).view(1, 3, 1, 1)
    with torch.no_grad():
        if isinstance(hourglass, StackedHourGlass):
            return evaluation_peaks(hourglass(image)[0].numpy())
        heatmaps = hourglass(image)[0][0].numpy()
    peaks = heatmaps.reshape(heatmaps.shape[0], -1).argmax(axis=1)
    rows, columns = np.divmod(peaks, heatmaps.shape[2])
    return np.stack([columns, rows], axis=1).astype(np.float64) * HEATMAP_STRIDE


def evaluation_peaks(heatmaps):
    """``K x 2`` (x, y) landmarks of ``K x h x w`` heatmaps read as the official ``eval_landmark.py`` reads them."""
    points = []
    for heatmap in heatmaps:
        order = np.argsort(-heatmap.reshape(-1), kind='stable')[:2]
        first, second = (np.array(divmod(int(index), heatmap.shape[1])) for index in order)
        step = np.where(second - first > 0, 1, -1)  # one pixel towards the second-highest value
        row, column = first * HEATMAP_STRIDE + step
        points.append((column, row))
    return np.array(points, dtype=np.float64)
