"""Facial landmarks stored beside prepared faces, and the landmark heatmaps DIC's training draws from them.

**The landmark file.** ``landmarks_<n>.txt`` (``landmarks_68.txt`` for dlib's 68 iBUG 300-W points) in the HR
folder or the HR LMDB folder, beside ``meta_info.txt``; one line per face::

    <key> x0 y0 x1 y1 ... x67 y67

in pixels of the stored HR image, pixel ``(i, j)`` at integer ``(i, j)`` (dlib's convention). The preparation
tools write it (``--landmarks 68``); faces where no landmarks were found are listed, one key a line, in
``landmarks_<n>_missing.txt`` instead and never get a line here.

**Heatmaps** (:func:`draw_heatmaps`), as the official DIC data loader draws them (Maclory/Deep-Iterative-
Collaboration, ``code/data/HRLandmarkDataset.py`` and ``util_dataset.generate_gt``): one map per landmark on a grid
4 times smaller than the HR image (the hourglass output), the landmark's coordinates divided by 4 (no half-pixel
shift), ``exp(-((x - lx)^2 + (y - ly)^2) / (2 sigma^2))`` at every integer grid point ``(x, y)``, sigma 1, not
normalised (the peak is below 1 unless the landmark falls on a grid point).
"""
import os
from os import path as osp

import numpy as np

from sfmnet_plugin.utils.atomic import atomic_write

# The hourglass heatmaps are 1/4 of the HR size (a stride-2 conv and a max-pool).
HEATMAP_STRIDE = 4
OFFICIAL_HEATMAP_SIGMA = 1.0
SUPPORTED_POINTS = (68,)


def landmark_file_name(points: int) -> str:
    return f'landmarks_{points}.txt'


def missing_landmark_file_name(points: int) -> str:
    return f'landmarks_{points}_missing.txt'


def check_points(points, option):
    if points not in SUPPORTED_POINTS:
        raise ValueError(f'{option}: {points!r} landmarks are not supported; use 68 (dlib\'s 68-point model).')
    return points


def format_landmark_line(key: str, points: np.ndarray) -> str:
    return key + ' ' + ' '.join(f'{value:.4f}' for value in np.asarray(points, dtype=np.float64).reshape(-1))


def write_landmark_files(folder, points: int, landmarks: dict, missing=()) -> str:
    """Write ``landmarks_<points>.txt`` (``{key: points x 2 array}``, in key order) and, when some faces have none,
    ``landmarks_<points>_missing.txt`` into ``folder``; returns the landmark file's path."""
    path = osp.join(folder, landmark_file_name(points))

    def write_lines(lines):
        def write(partial):
            with open(partial, 'w', encoding='ascii') as f:
                f.writelines(line + '\n' for line in lines)
        return write

    atomic_write(path, write_lines([format_landmark_line(key, landmarks[key]) for key in sorted(landmarks)]))
    missing_path = osp.join(folder, missing_landmark_file_name(points))
    if missing:
        atomic_write(missing_path, write_lines(sorted(missing)))
    elif osp.isfile(missing_path):
        os.remove(missing_path)
    return path


def read_landmark_file(path, points: int) -> dict:
    """``{key: points x 2 float64 array}`` from a landmark file; an error names the file and line of a bad line."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path!r} not found: prepare the faces with --landmarks {points} (sfmnet-folder-to-'
                                f'lmdb, sfmnet-prepare-celeba, sfmnet-prepare-helen), which writes it beside the '
                                'images.')
    landmarks = {}
    with open(path, encoding='ascii', errors='replace') as f:
        for line_no, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                continue
            try:
                values = np.array([float(v) for v in fields[1:]], dtype=np.float64)
            except ValueError:
                values = np.zeros(0)
            if values.size != 2 * points or not np.isfinite(values).all():
                raise ValueError(f'{path}, line {line_no}: expected a key and {2 * points} finite coordinates, got '
                                 f'{len(fields) - 1} values.')
            if fields[0] in landmarks:
                raise ValueError(f'{path}, line {line_no}: key {fields[0]!r} is listed twice.')
            landmarks[fields[0]] = values.reshape(points, 2)
    return landmarks


def draw_heatmaps(landmarks: np.ndarray, image_size, sigma: float = OFFICIAL_HEATMAP_SIGMA,
                  stride: int = HEATMAP_STRIDE) -> np.ndarray:
    """``points x (H / stride) x (W / stride)`` float32 Gaussian heatmaps of ``landmarks`` (HR pixels, x then y)
    for an HR image of ``image_size = (H, W)``, drawn as the official DIC loader draws them (module docstring)."""
    height, width = image_size[0] // stride, image_size[1] // stride
    landmarks = np.asarray(landmarks, dtype=np.float64) / stride
    xx: np.ndarray
    yy: np.ndarray
    xx, yy = np.meshgrid(np.arange(width), np.arange(height))
    d2 = (xx[None] - landmarks[:, 0, None, None]) ** 2 + (yy[None] - landmarks[:, 1, None, None]) ** 2
    return np.exp(-d2 / 2.0 / sigma / sigma).astype(np.float32)
