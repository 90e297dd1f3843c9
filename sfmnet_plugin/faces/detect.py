"""Offline face detection with five landmarks: MTCNN from ``facenet-pytorch`` (weights inside its wheel).

``facenet-pytorch==2.6.0`` is the detector because its three small networks ship in the wheel (no
download at first use), it runs on the torch this project uses, and MTCNN is what the SPARNet
family's papers crop CelebA with. Its metadata pins torch < 2.3, so it cannot be a pip extra of this
package (pip would downgrade torch): install it with ``--no-deps`` (``setup_env.sh`` does).

A detector here is any callable ``detector(rgb_pil_image) -> [DetectedFace]``; :func:`build_face_set`
accepts another one (e.g. given landmarks, as the tests do).
"""
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

FACENET_REQUIREMENT = 'facenet-pytorch==2.6.0'


class DetectorUnavailable(ImportError):
    """The face detector's package is not installed; the message says how to install it."""


@dataclass(frozen=True)
class DetectedFace:
    """A face: detector confidence in [0, 1], five (x, y) landmarks in the template's order and, when the
    detector gives one, its face box ``(x0, y0, x1, y1)``."""

    score: float
    landmarks: np.ndarray
    box: np.ndarray | None = None


# MTCNN's own stage thresholds (P-, R-, O-Net) and smallest face: facenet-pytorch's defaults.
MTCNN_THRESHOLDS = (0.6, 0.7, 0.7)
MTCNN_MIN_FACE = 20
# The second, more sensitive pass: R- and O-Net thresholds lowered to 0.6 on a copy enlarged 2x (bicubic), so faces
# from about 10 px up are looked for. facenet-pytorch's own way to smaller faces (``min_face_size`` 10) enlarges
# the photo with ``area`` interpolation (nearest-neighbour when enlarging), which finds fewer (docs/inference.md).
SENSITIVE_THRESHOLDS = (0.6, 0.6, 0.6)
SENSITIVE_ENLARGEMENT = 2
# The enlarged copy holds at most this many pixels (a larger photo is enlarged less, one this large not at all):
# detection's memory and time grow with the pixel count.
MAX_ENLARGED_PIXELS = 4096 * 4096


class MtcnnDetector:
    """MTCNN on the CPU; returns every face with its five landmarks, from left to right in the photo.

    ``thresholds`` and ``min_face_size`` are MTCNN's (facenet-pytorch's defaults); ``enlargement`` > 1 detects on a
    copy of the photo enlarged that many times (PIL bicubic, at most :data:`MAX_ENLARGED_PIXELS` pixels) and maps
    the faces back. :meth:`sensitive_pass` is the more sensitive detector whole-photo restoration runs second.
    """

    name = f'MTCNN ({FACENET_REQUIREMENT})'

    def __init__(self, thresholds: Sequence[float] = MTCNN_THRESHOLDS, min_face_size: int = MTCNN_MIN_FACE,
                 enlargement: float = 1) -> None:
        try:
            from facenet_pytorch import MTCNN
        except ImportError as error:
            raise DetectorUnavailable(
                f'face detection needs {FACENET_REQUIREMENT} (MTCNN, weights inside the wheel). Install it with '
                f'"pip install --no-deps {FACENET_REQUIREMENT}": its metadata pins an old torch that it does not '
                'need.') from error
        self.thresholds, self.min_face_size, self.enlargement = tuple(thresholds), min_face_size, enlargement
        self._mtcnn = MTCNN(keep_all=True, device='cpu', thresholds=list(thresholds), min_face_size=min_face_size)

    def sensitive_pass(self) -> 'MtcnnDetector':
        """A more sensitive MTCNN: lower R- and O-Net thresholds, on a photo enlarged 2x (faces from ~10 px)."""
        return MtcnnDetector(SENSITIVE_THRESHOLDS, self.min_face_size, SENSITIVE_ENLARGEMENT)

    def __call__(self, image):
        image = image.convert('RGB')
        factor = min(self.enlargement, math.sqrt(MAX_ENLARGED_PIXELS / (image.width * image.height)))
        scale = np.ones(2)
        if factor > 1:
            size = (round(image.width * factor), round(image.height * factor))
            scale = np.array(size) / image.size  # each axis exactly, after rounding
            image = image.resize(size, Image.BICUBIC)
        boxes, scores, landmarks = self._mtcnn.detect(image, landmarks=True)
        if boxes is None:
            return []
        # Coordinates are continuous, as in sfmnet_plugin.faces.align: resizing maps u to u * scale exactly.
        faces = [DetectedFace(float(score), np.asarray(points, np.float64) / scale,
                              np.asarray(box, np.float64) / np.tile(scale, 2))
                 for box, score, points in zip(boxes, scores, landmarks)]
        return sorted(faces, key=lambda face: float(face.landmarks[:, 0].mean()))  # stable, readable face numbers
