"""Whole-photo face restoration: detect every face, align it to the FFHQ template, restore it, paste it back.

:class:`WholePhotoRestorer` wraps a :class:`~sfmnet_plugin.inference.FaceRestorer` (any face network of the
family: SPARNetHD for real low-quality photos, or an SR network such as SFMNet x8) and a face detector (MTCNN by
default; any callable ``detector(rgb_pil_image) -> [DetectedFace]`` can be injected)::

    photo (H x W RGB) --detector--> five landmarks per face
      for each face: similarity transform onto the FFHQ 5-point template at face_size (512 for SPARNetHD)
        crop = warp of the photo at face_size / scale (antialiased)     # the network's input
        face = restorer(crop)                                            # face_size x face_size
        paste the face back into the (upscale x) photo through the inverse transform, blended with a
        feathered square mask (1 inside, falling smoothly to 0 at the crop's border)
    -> PhotoResult: the restored photo, every face with its matrices and crops, the skipped faces with reasons,
       and the possible faces a second, more sensitive detection pass found besides (reported, not restored)

Faces are skipped, and reported with the reason, when the detector is unsure (``min_score``), when the face
spans fewer than ``min_face_side`` photo pixels (nothing left to restore), or when it is too large at either end:
the restored ``face_size`` face would be enlarged more than ``max_face_enlargement`` times to cover it, or the
face would be shrunk more than ``max_face_shrink`` times to the network's input (``face_size / scale``, 16 px
for an x8 network) before restoration; either way the result would be blurrier than the photo. A photo too
small to hold a face, or one the detector fails on, is a :class:`PhotoError` (that photo only). Pixels that no
pasted face touches are left exactly as they were (upscaled with PIL bicubic when ``upscale`` > 1).

Faces the detector misses are not left unmentioned: a second, more sensitive pass (MTCNN's
:meth:`~sfmnet_plugin.faces.detect.MtcnnDetector.sensitive_pass`: lower stage thresholds on a photo enlarged 2x)
runs after the first, and what it finds that no first-pass face covers is a *possible face*: listed with its
position, size and score but left as it is (a measured few of them are not faces: the detector's threshold is
what keeps them out), unless ``second_pass='restore'``, which treats them as the first pass's faces (the same
``min_score`` and size limits decide).

Coordinates follow :mod:`sfmnet_plugin.faces.align`: continuous, pixel ``(i, j)`` covers ``[i, i+1) x [j, j+1)``.
"""
import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import List, Protocol

import cv2
import numpy as np
from PIL import Image

from sfmnet_plugin.faces.align import similarity_transform, source_side, warp_face
from sfmnet_plugin.faces.detect import DetectedFace, MtcnnDetector
from sfmnet_plugin.inference.network_options import FACE_SIZE, InferenceError, architecture

# The mean five points (eye centres, nose tip, mouth corners; the image's left first, MTCNN's order) of the
# FFHQ-aligned 512x512 faces SPARNetHD was trained on: the template GFPGAN/facexlib (MIT) align to.
FFHQ_TEMPLATE_512 = np.array([[192.98138, 239.94708], [318.90277, 240.19360], [256.63416, 314.01935],
                              [201.26117, 371.41043], [313.08905, 371.15118]])
FFHQ_TEMPLATE_SIZE = 512
# OpenCV puts pixel centres on integers: conjugate a continuous transform with half-pixel shifts.
# MTCNN's smallest face; a photo narrower than this holds nothing to detect or restore.
MIN_PHOTO_SIDE = 12
_TO_INTEGER_CENTRES = np.array([[1.0, 0, -0.5], [0, 1, -0.5], [0, 0, 1]])
_FROM_INTEGER_CENTRES = np.array([[1.0, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
# MTCNN's face box spans about half the FFHQ-aligned crop's side (0.46-0.52 wide, 0.61-0.66 high on the two
# public-domain photos and scikit-image's camera man), its centre within 0.15 of it from the crop's.
FACE_BOX_SIDE = 0.55
# Two detections are one face when their face squares overlap this much (intersection over union), or when either
# square's centre lies inside the other (a small detection within a face).
SAME_FACE_IOU = 0.3
SECOND_PASS_MODES = ('report', 'restore', 'off')
POSSIBLE_FACE = 'possible face, found only by the more sensitive second pass: not restored'


def ffhq_transform(landmarks, size):
    """3x3 matrix from photo to ``size`` x ``size`` crop coordinates that puts ``landmarks`` on the FFHQ template."""
    template = FFHQ_TEMPLATE_512 * (size / FFHQ_TEMPLATE_SIZE)
    return np.vstack([similarity_transform(landmarks, template), [0, 0, 1]])


def feathered_mask(size, feather=0.04):
    """``size`` x ``size`` float32 mask: 1 in the middle, a smooth fall to ~0 over the outer ``2.5 * feather``.

    A square inset by ``2 * feather * size`` is blurred with sigma ``feather * size / 2``, so the border is four
    sigmas from the square: below 1e-4.
    """
    margin = max(1, round(feather * size))
    mask = np.zeros((size, size), np.float32)
    mask[2 * margin:size - 2 * margin, 2 * margin:size - 2 * margin] = 1
    return cv2.GaussianBlur(mask, (0, 0), sigmaX=margin / 2, borderType=cv2.BORDER_CONSTANT)


def same_face(box: np.ndarray | Sequence[float], other: np.ndarray | Sequence[float],
              min_iou: float = SAME_FACE_IOU) -> bool:
    """Whether two face boxes ``(x0, y0, x1, y1)`` are one face: intersection over union at least ``min_iou``,
    or the centre of either inside the other."""
    width = min(box[2], other[2]) - max(box[0], other[0])
    height = min(box[3], other[3]) - max(box[1], other[1])
    overlap = max(0.0, width) * max(0.0, height)
    area = (box[2] - box[0]) * (box[3] - box[1]) + (other[2] - other[0]) * (other[3] - other[1]) - overlap
    if area > 0 and overlap / area >= min_iou:
        return True
    for inner, outer in ((box, other), (other, box)):
        x, y = (inner[0] + inner[2]) / 2, (inner[1] + inner[3]) / 2
        if outer[0] <= x <= outer[2] and outer[1] <= y <= outer[3]:
            return True
    return False


def default_face_size(options):
    """The face size a network restores: its ``out_size`` (SPARNet family: 128, SPARNetHD: 512), else 128."""
    if 'out_size' in options:
        return int(options['out_size'])
    parameter = inspect.signature(architecture(options)).parameters.get('out_size')
    return int(parameter.default) if parameter is not None and isinstance(parameter.default, int) else FACE_SIZE


@dataclass
class PhotoFace:
    """One detected face and what happened to it.

    ``matrix`` maps photo coordinates to the ``face_size`` crop (``crop_size``); ``input_crop`` is what the network saw
    (``face_size / scale``), ``restored`` its output. ``pasted_face`` is ``restored`` at the size it is pasted
    (antialiased down when the face is smaller in the output photo) and ``paste_matrix`` maps its coordinates to
    the output photo's. ``skip_reason`` is set (and the crops None) for a face that was not restored.
    ``second_pass`` marks a face found only by the second, more sensitive detection pass.
    """

    index: int
    score: float
    landmarks: np.ndarray
    matrix: np.ndarray
    source_side: float
    crop_size: int
    skip_reason: str | None = None
    input_crop: np.ndarray | None = None
    restored: np.ndarray | None = None
    pasted_face: np.ndarray | None = None
    paste_matrix: np.ndarray | None = None
    second_pass: bool = False

    @property
    def box(self) -> np.ndarray:
        """The face's square ``(x0, y0, x1, y1)`` in photo coordinates: centred on the aligned crop, about the size
        of MTCNN's face box (:data:`FACE_BOX_SIDE` of the crop's side); what the two detection passes are matched
        by, whatever boxes (or none) a detector gives."""
        centre = np.linalg.inv(self.matrix) @ np.array([self.crop_size / 2, self.crop_size / 2, 1.0])
        half = FACE_BOX_SIDE * self.source_side / 2
        return np.array([centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half])


@dataclass
class PhotoResult:
    """The restored photo (``H*upscale x W*upscale x 3`` uint8 RGB), the input and every detected face.

    ``faces`` are the faces restored or left (with the reason); ``possible_faces`` what the second, more sensitive
    detection pass found besides, left as it is (``skip_reason`` says so), when the second pass only reports.
    """

    photo: np.ndarray
    restored: np.ndarray
    background: np.ndarray  # the input at the output size: what the untouched pixels hold
    faces: List[PhotoFace] = field(default_factory=list)
    possible_faces: List[PhotoFace] = field(default_factory=list)

    @property
    def restored_faces(self):
        return [face for face in self.faces if face.skip_reason is None]

    @property
    def skipped_faces(self):
        return [face for face in self.faces if face.skip_reason is not None]

    def before_after(self, gap=8):
        """[input (at the output size) | restored photo], side by side with a white gap."""
        height = self.restored.shape[0]
        spacer = np.full((height, gap, 3), 255, np.uint8)
        return np.concatenate([self.background, spacer, self.restored], axis=1)


class FaceSR(Protocol):
    """What whole-photo restoration needs of a face restorer (a :class:`~sfmnet_plugin.inference.FaceRestorer`)."""

    options: dict

    @property
    def scale(self) -> int | None: ...

    def restore_images(self, images: Sequence[np.ndarray]) -> list[np.ndarray]: ...


class PhotoError(InferenceError):
    """A photo this restorer cannot process (too small, detection failed); other photos are not affected."""


class WholePhotoRestorer:
    """Restore every face of ordinary photos with a :class:`~sfmnet_plugin.inference.face_restorer.FaceRestorer`.

    Args:
        restorer: the face network and its weights.
        detector: ``detector(rgb_pil_image) -> [DetectedFace]``; default: MTCNN (created at the first photo).
        face_size: side of the aligned face the network returns (default: the network's ``out_size``, 512 for
            SPARNetHD, else 128). The network's input crop is ``face_size / scale``.
        upscale: the output photo is ``upscale`` times the input (background by PIL bicubic); default 1.
        min_score: faces the detector scores lower are skipped (reported).
        min_face_side: faces whose aligned crop spans fewer photo pixels are skipped (reported).
        max_face_enlargement: faces that would need the restored face enlarged more than this to cover them in the
            output photo are skipped (reported).
        max_face_shrink: faces that would be shrunk more than this to the network's input size are skipped
            (reported, and left as they are in the photo). Default: 1 for a super-resolution network (``scale``
            > 1: a face shrunk to an x8 network's 16-px input comes out blurrier than the photo's own face, so
            only faces that fit the input are restored), 2 for a restoration network (``scale`` 1, e.g. SPARNetHD,
            whose input is the face size itself).
        feather: width of the paste mask's soft border, as a fraction of the face size.
        batch_size: faces per forward pass.
        second_pass: what to do with the faces a second, more sensitive detection pass finds that the first did
            not: ``'report'`` (default: list them in ``PhotoResult.possible_faces``, restore none), ``'restore'``
            (treat them as the first pass's faces: ``min_score`` and the size limits decide) or ``'off'`` (no
            second pass).
        second_detector: the second pass's detector; default: the detector's own ``sensitive_pass()`` when it
            has one (MTCNN does), else no second pass (e.g. a detector that returns known landmarks).
    """

    def __init__(self, restorer: FaceSR, detector: Callable | None = None, face_size: int | None = None,
                 upscale: int = 1, min_score: float = 0.9, min_face_side: float = 16,
                 max_face_enlargement: float = 2.0, feather: float = 0.04, batch_size: int = 4,
                 max_face_shrink: float | None = None, second_pass: str = 'report',
                 second_detector: Callable | None = None) -> None:
        self.restorer = restorer
        self._detector = detector
        if second_pass not in SECOND_PASS_MODES:
            raise InferenceError(f'second_pass must be one of {", ".join(SECOND_PASS_MODES)}; got {second_pass!r}.')
        self.second_pass = second_pass
        self._second_detector = second_detector
        self.face_size = int(face_size or default_face_size(restorer.options))
        self.scale = restorer.scale or 1
        if self.face_size % self.scale:
            raise InferenceError(f'face_size {self.face_size} is not divisible by the network scale {self.scale}.')
        self.input_size = self.face_size // self.scale
        if max_face_shrink is None:
            max_face_shrink = 1.0 if self.scale > 1 else 2.0
        if not (isinstance(upscale, int) and upscale >= 1):
            raise InferenceError(f'upscale must be a positive integer, got {upscale!r}.')
        if (batch_size < 1 or min_face_side < 0 or max_face_enlargement <= 0 or max_face_shrink < 1
                or not 0 < feather < 0.2):
            raise InferenceError('batch_size must be positive, min_face_side >= 0, max_face_enlargement > 0, '
                                 f'max_face_shrink >= 1 and feather in (0, 0.2); got {batch_size}, {min_face_side}, '
                                 f'{max_face_enlargement}, {max_face_shrink}, {feather}.')
        self.upscale = upscale
        self.min_score = min_score
        self.min_face_side = min_face_side
        self.max_face_enlargement = max_face_enlargement
        self.max_face_shrink = max_face_shrink
        self.feather = feather
        self.batch_size = batch_size

    @property
    def detector(self) -> Callable:
        """The face detector: the one given, else MTCNN (created at first use)."""
        if self._detector is None:
            self._detector = MtcnnDetector()
        return self._detector

    @property
    def second_detector(self) -> Callable | None:
        """The second pass's detector: the one given, else the detector's ``sensitive_pass()`` if it has one; None
        when ``second_pass`` is ``'off'``."""
        if self.second_pass == 'off':
            return None
        if self._second_detector is None and hasattr(self.detector, 'sensitive_pass'):
            self._second_detector = self.detector.sensitive_pass()
        return self._second_detector

    # ------------------------------------------------------------------------------------------ one photo

    def restore_photo(self, photo: Image.Image | np.ndarray) -> PhotoResult:
        """Restore every face of ``photo`` (an RGB PIL image or ``H x W x 3`` uint8 array): a :class:`PhotoResult`."""
        image = photo.convert('RGB') if isinstance(photo, Image.Image) else Image.fromarray(np.asarray(photo))
        smallest = max(self.min_face_side, MIN_PHOTO_SIDE)
        if min(image.size) < smallest:
            raise PhotoError(f'the photo is {image.width}x{image.height} px: too small to hold a face '
                             f'(at least {smallest:.0f} px on each side)')
        faces = [self.examine(index, detected) for index, detected in enumerate(self.detect(self.detector, image))]
        possible = self.possible_faces(image, faces)
        if self.second_pass == 'restore':
            faces, possible = faces + possible, []
        todo = [face for face in faces if face.skip_reason is None]
        for face in todo:
            face.input_crop = np.asarray(warp_face(image, self.input_matrix(face.matrix), self.input_size))
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start:start + self.batch_size]
            crops = [np.asarray(face.input_crop) for face in batch]
            for face, restored in zip(batch, self.restorer.restore_images(crops)):
                if restored.shape[:2] != (self.face_size, self.face_size):
                    raise InferenceError(
                        f"network_g type {self.restorer.options['type']!r} turned a {self.input_size}-px face into "
                        f'{restored.shape[1]}x{restored.shape[0]}, not {self.face_size}x{self.face_size}; set '
                        'face_size to what it returns.')
                face.restored = restored

        background = self.background(image)
        output = background.copy()
        for face in todo:
            self.paste(output, face)
        return PhotoResult(np.asarray(image), output, background, faces, possible)

    @staticmethod
    def detect(detector: Callable, image: Image.Image) -> list[DetectedFace]:
        """``detector(image)``; its failure on this photo is a :class:`PhotoError` (the other photos go on)."""
        try:
            return detector(image)
        except (RuntimeError, ValueError) as error:  # e.g. a photo of an extreme aspect ratio
            raise PhotoError(f'face detection failed on this {image.width}x{image.height} photo: {error}') from error

    def possible_faces(self, image: Image.Image, faces: list[PhotoFace]) -> list[PhotoFace]:
        """The second pass's faces that none of ``faces`` (the first pass's) covers, numbered after them; examined
        (to be restored) with ``second_pass='restore'``, else left with the reason."""
        if self.second_detector is None:
            return []
        possible: list[PhotoFace] = []
        for detected in self.detect(self.second_detector, image):
            face = self.examine(len(faces) + len(possible), detected, second_pass=True)
            if not any(same_face(face.box, other.box) for other in faces):
                possible.append(face)
        if self.second_pass == 'report':
            for face in possible:
                anyway = f'; it would be left anyway: {face.skip_reason}' if face.skip_reason else ''
                face.skip_reason = f'{POSSIBLE_FACE}{anyway}'
        return possible

    def examine(self, index: int, detected: DetectedFace, second_pass: bool = False) -> PhotoFace:
        """A :class:`PhotoFace` for one detection, with ``skip_reason`` set when it is not to be restored."""
        matrix = ffhq_transform(detected.landmarks, self.face_size)
        side = source_side(matrix, self.face_size)
        face = PhotoFace(index, detected.score, np.asarray(detected.landmarks, np.float64), matrix, side,
                         self.face_size, second_pass=second_pass)
        enlargement = self.upscale * side / self.face_size
        if detected.score < self.min_score:
            face.skip_reason = f'low detector score {detected.score:.3f} (min_score {self.min_score})'
        elif side < self.min_face_side:
            face.skip_reason = (f'too small: the face spans {side:.0f} px of the photo, below min_face_side '
                                f'{self.min_face_side}')
        elif enlargement > self.max_face_enlargement:
            face.skip_reason = (f'too large: the face spans {side:.0f} px of the photo, so the {self.face_size}-px '
                                f'restored face would be enlarged {enlargement:.1f}x (max_face_enlargement '
                                f'{self.max_face_enlargement}); use a network with a larger face size or a smaller '
                                'photo')
        elif side / self.input_size > self.max_face_shrink:
            network = self.restorer.options.get('type', 'the network')
            face.skip_reason = (f'too large for the network input: the face spans {side:.0f} px of the photo but '
                                f'{network} takes {self.input_size}x{self.input_size} faces, so it would be shrunk '
                                f'{side / self.input_size:.1f}x before restoration (max_face_shrink '
                                f'{self.max_face_shrink}) and come out blurrier than the photo; use a network with a '
                                f'larger input (e.g. SPARNetHD at 512) or faces at most '
                                f'{self.input_size * self.max_face_shrink:.0f} px')
        return face

    def input_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """Photo -> network-input-crop coordinates (the ``face_size`` crop shrunk by the network's scale)."""
        return np.diag([1 / self.scale, 1 / self.scale, 1.0]) @ matrix

    def background(self, image: Image.Image) -> np.ndarray:
        """The input photo at the output size (PIL bicubic when ``upscale`` > 1)."""
        if self.upscale == 1:
            return np.array(image)
        return np.array(image.resize((image.width * self.upscale, image.height * self.upscale), Image.BICUBIC))

    def paste(self, output: np.ndarray, face: PhotoFace) -> None:
        """Blend ``face.restored`` into ``output`` (in place) through the inverse of its alignment."""
        enlargement = self.upscale * face.source_side / self.face_size
        paste_size = self.face_size if enlargement >= 1 else max(1, round(self.face_size * enlargement))
        pasted = np.asarray(face.restored)
        if paste_size != self.face_size:
            pasted = np.array(Image.fromarray(pasted).resize((paste_size, paste_size), Image.BICUBIC))
        face.pasted_face = pasted
        ratio = self.face_size / paste_size
        face.paste_matrix = (np.diag([self.upscale, self.upscale, 1.0]) @ np.linalg.inv(face.matrix)
                             @ np.diag([ratio, ratio, 1.0]))

        # Only the bounding box of the pasted square is warped: photos can be large.
        corners = np.array([[0, 0, 1], [paste_size, 0, 1], [0, paste_size, 1], [paste_size, paste_size, 1]], float)
        mapped = (face.paste_matrix @ corners.T)[:2]
        height, width = output.shape[:2]
        x0, y0 = (max(0, math.floor(v)) for v in mapped.min(1))
        x1, y1 = min(width, math.ceil(mapped[0].max())), min(height, math.ceil(mapped[1].max()))
        if x1 <= x0 or y1 <= y0:
            return
        to_box = np.array([[1.0, 0, -x0], [0, 1, -y0], [0, 0, 1]])
        warp = (_TO_INTEGER_CENTRES @ to_box @ face.paste_matrix @ _FROM_INTEGER_CENTRES)[:2]
        size = (x1 - x0, y1 - y0)
        restored = cv2.warpAffine(pasted.astype(np.float32), warp, size, flags=cv2.INTER_CUBIC,
                                  borderMode=cv2.BORDER_REPLICATE)
        mask = cv2.warpAffine(feathered_mask(paste_size, self.feather), warp, size, flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)[:, :, None]
        region = output[y0:y1, x0:x1]
        blended = np.clip(np.rint(region * (1 - mask) + np.clip(restored, 0, 255) * mask), 0, 255).astype(np.uint8)
        touched = mask[:, :, 0] > 0  # untouched pixels keep their exact values
        region[touched] = blended[touched]
