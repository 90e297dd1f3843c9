"""Five-point face alignment onto a fixed template, as clean ``size`` x ``size`` crops.

The template :data:`FACE_TEMPLATE_128` gives, in pixels of a 128x128 crop, the left eye, the right
eye, the nose tip, the left and the right mouth corner ("left" = the image's left, the order MTCNN
and most five-point detectors use). It frames the whole face with some hair and the chin, like the
CelebA/Helen crops used in face super-resolution: the eyes lie 32 % of the width apart on the line
y = 0.40, the nose tip at y = 0.56, the mouth corners 26 % apart on y = 0.72, all symmetric about
the vertical centre line. A least-squares similarity transform (rotation, uniform scale,
translation; Umeyama's closed form) maps a face's five landmarks onto it.

Coordinates are continuous: pixel ``(i, j)`` covers ``[i, i+1) x [j, j+1)``, so its centre is at
``(i + 0.5, j + 0.5)``; scaling a crop (supersampling, other sizes) is then a plain multiplication.
"""
import math
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import ArrayLike
from PIL import Image

FACE_TEMPLATE_128 = np.array([[43.5, 51.2], [84.5, 51.2], [64.0, 71.7], [47.4, 92.2], [80.6, 92.2]])
TEMPLATE_SIZE = 128
MAX_SUPERSAMPLE = 8  # warp at up to 8x the crop size; a face much larger than that is rare and only slightly aliased


def similarity_transform(source: ArrayLike, target: ArrayLike) -> np.ndarray:
    """2x3 matrix of the least-squares similarity transform taking ``source`` points onto ``target``."""
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    source_mean, target_mean = source.mean(0), target.mean(0)
    source_centred, target_centred = source - source_mean, target - target_mean
    covariance = target_centred.T @ source_centred / len(source)
    u, singular_values, vt = np.linalg.svd(covariance)
    reflection = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])  # a proper rotation, never a mirror
    rotation = u @ reflection @ vt
    scale = np.trace(np.diag(singular_values) @ reflection) / (source_centred ** 2).sum(1).mean()
    translation = target_mean - scale * rotation @ source_mean
    return np.hstack([scale * rotation, translation[:, None]])


@dataclass(frozen=True)
class Jitter:
    """A small similarity around the crop centre, applied after the alignment, optionally mirrored.

    ``shift`` is a fraction of the crop size; ``mirrored`` flips the crop left-right (the landmarks
    then swap sides, which a face does too).
    """

    degrees: float = 0.0
    scale: float = 1.0
    shift: tuple = (0.0, 0.0)
    mirrored: bool = False

    @classmethod
    def random(cls, rng: np.random.Generator, mirrored: bool = False, max_degrees: float = 6.0,
               max_scale: float = 0.06, max_shift: float = 0.04) -> 'Jitter':
        """A jitter drawn from ``rng`` (a ``numpy.random.Generator``): angle, scale and shift uniform in the bounds."""
        return cls(degrees=float(rng.uniform(-max_degrees, max_degrees)),
                   scale=float(1 + rng.uniform(-max_scale, max_scale)),
                   shift=tuple(float(v) for v in rng.uniform(-max_shift, max_shift, 2)), mirrored=mirrored)

    def matrix(self, size: int = TEMPLATE_SIZE) -> np.ndarray:
        """3x3 matrix from aligned-crop to jittered-crop coordinates."""
        angle = math.radians(self.degrees)
        rotation = self.scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        centre = np.full(2, size / 2)
        translation = centre + np.asarray(self.shift) * size - rotation @ centre
        matrix = np.vstack([np.hstack([rotation, translation[:, None]]), [0, 0, 1]])
        if self.mirrored:
            matrix = np.array([[-1.0, 0, size], [0, 1, 0], [0, 0, 1]]) @ matrix
        return matrix

    def as_dict(self) -> dict:
        """The jitter as JSON data, rounded (as ``sources.json`` records it)."""
        return {'degrees': round(self.degrees, 3), 'scale': round(self.scale, 4),
                'shift': [round(v, 4) for v in self.shift], 'mirrored': self.mirrored}


def face_transform(landmarks: ArrayLike, size: int = TEMPLATE_SIZE, jitter: Jitter | None = None) -> np.ndarray:
    """3x3 matrix from photo to crop coordinates that puts these five ``landmarks`` on the template."""
    template = FACE_TEMPLATE_128 * (size / TEMPLATE_SIZE)
    matrix = np.vstack([similarity_transform(landmarks, template), [0, 0, 1]])
    return matrix if jitter is None else jitter.matrix(size) @ matrix


def source_side(matrix, size=TEMPLATE_SIZE):
    """How many photo pixels one side of the crop spans (below ``size`` the crop is an upscaled, blurry face)."""
    return size / math.sqrt(abs(np.linalg.det(matrix[:2, :2])))


def outside_fraction(matrix, photo_size, size=TEMPLATE_SIZE):
    """Fraction of the crop's pixels whose centre falls outside the photo (``photo_size`` = (width, height))."""
    centres = np.arange(size) + 0.5
    grid = np.stack(np.meshgrid(centres, centres), -1).reshape(-1, 2)
    inverse = np.linalg.inv(matrix)
    points = grid @ inverse[:2, :2].T + inverse[:2, 2]
    inside = (points >= 0).all(1) & (points[:, 0] <= photo_size[0]) & (points[:, 1] <= photo_size[1])
    return float(1 - inside.mean())


def warp_face(image: Image.Image, matrix: np.ndarray, size: int = TEMPLATE_SIZE) -> Image.Image:
    """The ``size`` x ``size`` crop of an RGB PIL ``image`` under ``matrix`` (photo -> crop coordinates).

    The warp runs at an integer multiple of the crop size chosen so that it never shrinks the photo
    (bicubic), then PIL's antialiased bicubic reduces it to ``size``, the resampling FSR uses for its
    HR crops: a large face is not aliased. Pixels from outside the photo repeat its border.
    """
    factor = min(max(1, math.ceil(source_side(matrix, size) / size)), MAX_SUPERSAMPLE)
    big = size * factor
    # OpenCV puts pixel centres on integers: shift by half a pixel on both sides of the continuous transform.
    to_integer_centres = np.array([[1.0, 0, -0.5], [0, 1, -0.5], [0, 0, 1]])
    from_integer_centres = np.array([[1.0, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
    warp = to_integer_centres @ np.diag([factor, factor, 1.0]) @ matrix @ from_integer_centres
    warped = cv2.warpAffine(np.asarray(image.convert('RGB')), warp[:2], (big, big), flags=cv2.INTER_CUBIC,
                            borderMode=cv2.BORDER_REPLICATE)
    crop = Image.fromarray(warped)
    return crop if factor == 1 else crop.resize((size, size), Image.BICUBIC)


def align_face(image: Image.Image, landmarks: ArrayLike, size: int = TEMPLATE_SIZE,
               jitter: Jitter | None = None) -> Image.Image:
    """The aligned (optionally jittered) ``size`` x ``size`` face crop of ``image`` with these five ``landmarks``."""
    return warp_face(image, face_transform(landmarks, size, jitter), size)
