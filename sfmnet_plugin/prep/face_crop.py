"""Where the face square lies in a source photo, and how it is cut out.

DIC (whose CelebA/Helen protocol SFMNet follows) cropped the square box around 68 OpenFace
landmarks; those landmarks are not available, so the CelebA box is predicted from the official
5 points with constants measured on the 68-point mean face (the ``TEMPLATE`` of OpenFace's
``AlignDlib``, i.e. dlib's mean shape):

* side of its 68-point bounding box = 2.14 x the eye-to-mouth distance (eye midpoint to mouth
  midpoint) = 2.33 x the inter-ocular distance (eye centre to eye centre); the larger of the two
  is used, so a turned head (short inter-ocular distance) or a tilted one (short eye-to-mouth
  distance) still gets a full-face box;
* centre of that box = the midpoint between the eye midpoint and the mouth midpoint, moved
  0.21 x the eye-to-mouth vector further towards the mouth (the chin reaches further below the
  mouth than the brows above the eyes).

Crops are axis-aligned squares (no rotation), as DIC's. Every source pixel keeps its coordinate
convention: x right, y down, origin at the top-left corner of the image as stored (EXIF
orientation is ignored, because the annotations refer to the stored pixels).
"""
import math
import multiprocessing
from dataclasses import dataclass
from functools import cache
from typing import Tuple

import numpy as np

EYE_TO_MOUTH_TO_SIDE = 2.14
INTEROCULAR_TO_SIDE = 2.33
CENTRE_SHIFT_TOWARDS_MOUTH = 0.21


class SkipImage(Exception):
    """An image that cannot give a valid face crop; the message is ``<category>: <details>``."""


@dataclass(frozen=True)
class SquareRegion:
    """A square in source-image pixel coordinates: centre (cx, cy) and side length, all floats."""
    cx: float
    cy: float
    side: float

    def integer_box(self):
        """(left, top, side) in whole pixels: the side rounded, the box centred on (cx, cy)."""
        side = max(1, math.floor(self.side + 0.5))
        return math.floor(self.cx - side / 2 + 0.5), math.floor(self.cy - side / 2 + 0.5), side


def square_from_five_points(points, margin=1.0):
    """The face square predicted from CelebA's 5 points (left eye, right eye, nose, left mouth, right mouth).

    ``points`` is a 5 x 2 array of (x, y); ``margin`` scales the side (1.0 = the 68-point box).
    """
    points = np.asarray(points, dtype=np.float64).reshape(5, 2)
    eye_mid = (points[0] + points[1]) / 2
    mouth_mid = (points[3] + points[4]) / 2
    eye_to_mouth = mouth_mid - eye_mid
    side = max(EYE_TO_MOUTH_TO_SIDE * np.hypot(*eye_to_mouth), INTEROCULAR_TO_SIDE * np.hypot(*(points[1] - points[0])))
    centre = (eye_mid + mouth_mid) / 2 + CENTRE_SHIFT_TOWARDS_MOUTH * eye_to_mouth
    return SquareRegion(float(centre[0]), float(centre[1]), float(side * margin))


def square_around_points(points, margin=1.0):
    """The square on the bounding box of many landmarks (e.g. Helen's 194): side = its longer edge x margin."""
    points = np.asarray(points, dtype=np.float64)
    low, high = points.min(axis=0), points.max(axis=0)
    centre = (low + high) / 2
    return SquareRegion(float(centre[0]), float(centre[1]), float((high - low).max() * margin))


def square_from_bbox(x, y, width, height, margin=1.0):
    """The square centred on a detector box (x, y, width, height): side = its longer edge x margin."""
    return SquareRegion(x + width / 2, y + height / 2, max(width, height) * margin)


def crop_square(image, region):
    """Cut ``region`` out of an RGB PIL image; returns a ``side x side x 3`` uint8 array.

    Along each axis where the square fits inside the image it is shifted inside (real pixels,
    the face slightly off-centre); where it is larger than the image it stays centred and the
    missing rows/columns repeat the border pixels (no black bars for the network to learn).
    """
    width, height = image.size
    left, top, side = region.integer_box()
    if side <= width:
        left = min(max(left, 0), width - side)
    if side <= height:
        top = min(max(top, 0), height - side)
    # Only the part inside the image is converted to an array: much cheaper than the whole photo.
    crop = np.array(image.crop((max(left, 0), max(top, 0), min(left + side, width), min(top + side, height))))
    pad = ((max(0, -top), max(0, top + side - height)), (max(0, -left), max(0, left + side - width)), (0, 0))
    return np.pad(crop, pad, mode='edge') if any(any(p) for p in pad) else crop


# The crops below are what a preparation job carries: each is called with the decoded RGB PIL
# image and returns (face array, crop side in source pixels).

@dataclass(frozen=True)
class SquareCrop:
    """Crop a face square found from landmarks or a face box.

    Its centre must lie inside the image; otherwise the annotation belongs to another image (or
    is garbage) and the crop would show background.
    """
    region: SquareRegion

    def __call__(self, image):
        width, height = image.size
        if not (0 <= self.region.cx < width and 0 <= self.region.cy < height):
            raise SkipImage(f'bad annotation: the face centre ({self.region.cx:.0f}, {self.region.cy:.0f}) lies '
                            f'outside the {width}x{height} image')
        return crop_square(image, self.region), self.region.side


@dataclass(frozen=True)
class CentreCrop:
    """Crop a ``side x side`` square from the centre of the image (aligned CelebA)."""
    side: int

    def __call__(self, image):
        width, height = image.size
        if height < self.side or width < self.side:
            raise SkipImage(f'too small: image {width}x{height} is smaller than the '
                            f'{self.side}x{self.side} centre crop')
        top, left = (height - self.side) // 2, (width - self.side) // 2
        return np.array(image.crop((left, top, left + self.side, top + self.side))), self.side


@dataclass(frozen=True)
class WholeImage:
    """Use the whole image; with ``square=True`` a non-square image is rejected (it would be distorted)."""
    square: bool = False

    def __call__(self, image):
        width, height = image.size
        if self.square and height != width:
            raise SkipImage(f'not square: image {width}x{height}')
        return np.array(image), min(height, width)


@cache
def process_face_detector():
    """One MTCNN per process, built on first use (preparation workers each build their own).

    A pool worker gets one torch thread: the pool already runs one worker per core.
    """
    import torch

    from sfmnet_plugin.faces.detect import MtcnnDetector

    if multiprocessing.current_process().daemon:
        torch.set_num_threads(1)
    return MtcnnDetector()


@dataclass(frozen=True)
class DetectedBoxCrop:
    """SPARNet's CelebA crop (docs/fidelity.md §B5.1): the square on the MTCNN face box, no alignment.

    MTCNN runs on the whole photo; of the faces it finds, the largest whose box contains
    ``reference`` (a point on the wanted face; for CelebA the mean of its 5 official landmarks, so a
    bystander is never taken) is used. The square is centred on that box, its side the box's
    longer edge x ``margin``.
    """
    reference: Tuple[float, float]
    margin: float = 1.0

    def __call__(self, image):
        x, y = self.reference
        boxes = [face.box for face in process_face_detector()(image)
                 if face.box[0] <= x <= face.box[2] and face.box[1] <= y <= face.box[3]]
        if not boxes:
            raise SkipImage(f'no face: MTCNN found no face around the annotated landmarks ({x:.0f}, {y:.0f})')
        x0, y0, x1, y1 = max(boxes, key=lambda box: (box[2] - box[0]) * (box[3] - box[1]))
        region = square_from_bbox(x0, y0, x1 - x0, y1 - y0, self.margin)
        return crop_square(image, region), region.side
