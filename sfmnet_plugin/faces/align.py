"""Five-point face alignment onto a fixed 128x128 template.

The template (left eye, right eye, nose tip, left and right mouth corner, in pixels of a 128x128
crop) frames the whole face with some hair and the chin, like the CelebA/Helen crops used in
face super-resolution: eyes 30 % of the width apart on the line y = 0.40, mouth corners on
y = 0.72. A least-squares similarity transform (rotation, uniform scale, translation; Umeyama's
closed form) maps a face's landmarks onto it.
"""
import cv2
import numpy as np
from PIL import Image

FACE_TEMPLATE_128 = np.array([[43.5, 51.2], [84.5, 51.2], [64.0, 71.7], [47.4, 92.2], [80.6, 92.2]])


def similarity_transform(source, target):
    """2x3 matrix of the least-squares similarity transform taking ``source`` points onto ``target``."""
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    source_mean, target_mean = source.mean(0), target.mean(0)
    source_centred, target_centred = source - source_mean, target - target_mean
    covariance = target_centred.T @ source_centred / len(source)
    u, singular_values, vt = np.linalg.svd(covariance)
    reflection = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])  # a proper rotation, never a mirror
    rotation = u @ reflection @ vt
    scale = np.trace(np.diag(singular_values) @ reflection) / source_centred.var(0).sum()
    translation = target_mean - scale * rotation @ source_mean
    return np.hstack([scale * rotation, translation[:, None]])


def jitter_transform(rng, max_degrees=6.0, max_scale=0.06, max_shift=0.04, size=128):
    """A small random similarity around the crop centre (3x3), to enlarge a tiny training set."""
    angle = np.deg2rad(rng.uniform(-max_degrees, max_degrees))
    scale = 1 + rng.uniform(-max_scale, max_scale)
    shift = rng.uniform(-max_shift, max_shift, 2) * size
    centre = np.array([size / 2, size / 2])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    translation = centre + shift - rotation @ centre
    return np.vstack([np.hstack([rotation, translation[:, None]]), [0, 0, 1]])


def align_face(image, landmarks, size=128, supersample=4, extra=None):
    """Warp the face with these five ``landmarks`` onto :data:`FACE_TEMPLATE_128` (scaled to ``size``).

    The warp runs at ``supersample`` times the output size (bicubic) and is then reduced with PIL's
    antialiased bicubic, so a large face is not aliased and a small one is not blocky. ``extra``
    (3x3, in output pixels) is applied after the alignment, e.g. :func:`jitter_transform`.
    Pixels from outside the photo repeat its border.
    """
    template = FACE_TEMPLATE_128 * (size / 128.0)
    matrix = np.vstack([similarity_transform(landmarks, template), [0, 0, 1]])
    if extra is not None:
        matrix = extra @ matrix
    big = size * supersample
    warped = cv2.warpAffine(np.asarray(image), (np.diag([supersample, supersample, 1]) @ matrix)[:2], (big, big),
                            flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    return Image.fromarray(warped).resize((size, size), Image.BICUBIC)
