"""Offline face detection with five landmarks: MTCNN from ``facenet-pytorch`` (weights inside its wheel).

``facenet-pytorch==2.6.0`` is the detector because its three small networks ship in the wheel (no
download at first use), it runs on the torch this project uses, and MTCNN is what the SPARNet
family's papers crop CelebA with. Its metadata pins torch < 2.3, so it cannot be a pip extra of this
package (pip would downgrade torch): install it with ``--no-deps`` (``setup_env.sh`` does).

A detector here is any callable ``detector(rgb_pil_image) -> [DetectedFace]``; :func:`build_face_set`
accepts another one (e.g. given landmarks, as the tests do).
"""
from dataclasses import dataclass

import numpy as np

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


class MtcnnDetector:
    """MTCNN on the CPU; returns every face with its five landmarks, from left to right in the photo."""

    name = f'MTCNN ({FACENET_REQUIREMENT})'

    def __init__(self):
        try:
            from facenet_pytorch import MTCNN
        except ImportError as error:
            raise DetectorUnavailable(
                f'face detection needs {FACENET_REQUIREMENT} (MTCNN, weights inside the wheel). Install it with '
                f'"pip install --no-deps {FACENET_REQUIREMENT}": its metadata pins an old torch that it does not '
                'need.') from error
        self._mtcnn = MTCNN(keep_all=True, device='cpu')

    def __call__(self, image):
        boxes, scores, landmarks = self._mtcnn.detect(image.convert('RGB'), landmarks=True)
        if boxes is None:
            return []
        faces = [DetectedFace(float(score), np.asarray(points, np.float64), np.asarray(box, np.float64))
                 for box, score, points in zip(boxes, scores, landmarks)]
        return sorted(faces, key=lambda face: float(face.landmarks[:, 0].mean()))  # stable, readable face numbers
