"""Landmark NME: how far a landmark detector's 68 points on the SR face are from its points on the HR face.

DIC (Ma et al., CVPR 2020) and SPARNet report landmark detection on SR faces; lower is better. Here:

    NME = mean over the 68 points of ||p_SR - p_HR|| / d_HR

with ``p`` the 68 iBUG 300-W landmarks of dlib's ``shape_predictor_68_face_landmarks.dat`` (from the
``face-metrics`` extra; **non-commercial use only**, see docs/metrics_and_benchmark.md), both predicted inside the
face box found on the HR image (:mod:`.face_models`), and ``d_HR`` the HR's inter-ocular distance: between the outer
eye corners (points 37 and 46 in 1-based iBUG numbering; ``normalization: inter_ocular``, the 300-W convention and the
default) or between the eye centres (``inter_pupil``). A fraction, not a percentage; 0 for identical images.

How it differs from DIC's ``eval_landmark.py``: DIC runs its own 4-stack hourglass network (heatmaps, trained on
CelebA with OpenFace landmarks) on the SR face and compares with the *annotated* landmarks of the test set. This
metric needs no annotations: it compares the detector's output on SR with its output on HR, so the detector's
own error on real faces cancels and what remains is how much super-resolution moves the landmarks. dlib's
detector is an ensemble of regression trees (Kazemi & Sullivan 2014) started from the face box; it is less
accurate than an hourglass network on hard faces, so numbers are comparable only with other NMEs from this metric.

``detector`` may instead be any callable, RGB uint8 face -> ``68 x 2`` (x, y) points, run on SR and HR alike: e.g.
a trained DIC's own hourglass (:func:`sfmnet_plugin.inference.dic_landmarks.dic_landmark_detector`, a DIC checkpoint
or ``FB_HG_68_CelebA.pth``): no dlib needed, landmarks on a 4-pixel grid, the same NME formula. The callable comes
from outside because building a network from a checkpoint is not this package's to import.
"""
from collections.abc import Callable

import numpy as np
from basicsr.utils.registry import METRIC_REGISTRY

from sfmnet_plugin.metrics.face_models import as_rgb, face_box, hr_landmarks, landmarks

NME_NORMALIZATIONS = ('inter_ocular', 'inter_pupil')


def inter_ocular_distance(points_68, normalization='inter_ocular'):
    """Outer eye corners (0-based points 36 and 45) or eye centres (means of points 36-41 and 42-47)."""
    if normalization == 'inter_ocular':
        return float(np.linalg.norm(points_68[45] - points_68[36]))
    return float(np.linalg.norm(points_68[42:48].mean(0) - points_68[36:42].mean(0)))


@METRIC_REGISTRY.register()
def calculate_landmark_nme(img, img2, normalization='inter_ocular', input_order='HWC',
                           detector: str | Callable[[np.ndarray], np.ndarray] = 'dlib', **kwargs):
    """Normalised mean error (lower is better) of the SR's 68 landmarks against the HR's.

    Args:
        img, img2 (ndarray): uint8 BGR aligned face crops (SR and HR), HWC unless ``input_order='CHW'``.
        normalization (str): 'inter_ocular' (outer eye corners, default) | 'inter_pupil' (eye centres).
        detector (str | callable): 'dlib' (default; needs the ``face-metrics`` extra, else
            ``FaceMetricsUnavailable`` says what to install) | a callable, RGB uint8 HWC face -> ``68 x 2`` (x, y)
            points (e.g. :func:`sfmnet_plugin.inference.dic_landmarks.dic_landmark_detector`).
    """
    if normalization not in NME_NORMALIZATIONS:
        raise ValueError(f'calculate_landmark_nme: unknown normalization {normalization!r}; choose one of '
                         f'{NME_NORMALIZATIONS}.')
    if detector != 'dlib' and not callable(detector):
        raise ValueError(f"calculate_landmark_nme: unknown detector {detector!r}; give 'dlib' or a callable (RGB uint8 "
                         'face -> 68 x 2 points, e.g. sfmnet_plugin.inference.dic_landmarks.dic_landmark_detector).')
    if img.shape != img2.shape:
        raise ValueError(f'Image shapes are different: {img.shape}, {img2.shape}.')
    sr_rgb = as_rgb(img, input_order, 'calculate_landmark_nme')
    hr_rgb = as_rgb(img2, input_order, 'calculate_landmark_nme')
    if callable(detector):
        hr_points, sr_points = np.asarray(detector(hr_rgb)), np.asarray(detector(sr_rgb))
    else:
        hr_points = hr_landmarks(hr_rgb)
        sr_points = landmarks(sr_rgb, face_box(hr_rgb))
    return float(np.linalg.norm(sr_points - hr_points, axis=1).mean() / inter_ocular_distance(hr_points, normalization))
