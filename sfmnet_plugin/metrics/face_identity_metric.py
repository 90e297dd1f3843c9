"""Identity similarity: cosine similarity of face-recognition embeddings of the SR and the HR face.

SFMNet's and SPARNet's papers report it to show that super-resolution keeps who the person is. Two
recognition networks are supported:

* ``backend: dlib`` (default): dlib's ResNet-128 (``dlib_face_recognition_resnet_model_v1.dat``, 128-D, public
  domain) from the ``face-metrics`` extra. **Alignment:** dlib's own. The HR face's five dlib landmarks (eye
  corners and nose base, ``shape_predictor_5_face_landmarks.dat``, public domain) are located in the HR face box
  (see :mod:`.face_models`), and ``dlib.get_face_chip(image, landmarks, size=150, padding=0.25)`` cuts the same
  150x150 chip from the SR and from the HR image, the chip ``compute_face_descriptor(image, landmarks)`` uses:
  the HR embedding is exactly dlib's descriptor of the HR face.
* ``backend: onnx`` with ``onnx_path``: an ArcFace-style network exported to ONNX (e.g. insightface's
  ``w600k_r50.onnx``; given by local path, run with onnxruntime). **Alignment:** ArcFace's. Five points (eye
  centres, nose tip, mouth corners) are taken from the HR's 68 dlib landmarks, and the least-squares similarity
  onto ArcFace's 112x112 template (:data:`ARCFACE_TEMPLATE_112`, scaled to the model's input size) warps SR and
  HR alike (bilinear). Input: RGB, ``(x - 127.5) / 127.5``, 1x3xHxW; the first output is the embedding.

Both images go through the same warp computed on the HR, so the score compares appearance, not where a landmark
detector lands on a blurry face. Dlib's embeddings are not centred, so its cosine similarities are high even for
different people (about 0.88 for two different women in the tests, against 1 for identical faces): use it to
compare methods on the same faces, not as a same/different-person classifier (dlib's own rule for that is a
Euclidean distance below 0.6).
"""
import functools

import cv2
import numpy as np
from basicsr.utils.registry import METRIC_REGISTRY

from sfmnet_plugin.faces.align import similarity_transform
from sfmnet_plugin.metrics.face_models import (
    HR_CACHE,
    INSTALL_HINT,
    FaceMetricsUnavailable,
    as_rgb,
    dlib_models,
    dlib_rectangle,
    face_box,
    hr_landmarks,
)
from sfmnet_plugin.utils.nonfinite import first_nonfinite_onnx_weight

IDENTITY_BACKENDS = ('dlib', 'onnx')
DLIB_CHIP_SIZE, DLIB_CHIP_PADDING = 150, 0.25  # what dlib's compute_face_descriptor(image, landmarks) uses
# ArcFace's five reference points in a 112x112 crop (insightface's arcface_dst): eyes, nose tip, mouth corners
ARCFACE_TEMPLATE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                                 [41.5493, 92.3655], [70.7299, 92.2041]])
ARCFACE_MEAN, ARCFACE_STD = 127.5, 127.5


def cosine_similarity(a, b):
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# ---------------------------------------------------------------------------------------------- dlib backend

def _dlib_shape(hr_rgb):
    """The HR's five-point ``dlib.full_object_detection`` (integer coordinates, as dlib's chip function takes)."""
    models = dlib_models()
    return HR_CACHE.get(hr_rgb, 'dlib_shape_5', lambda: models['landmarks_5'](hr_rgb, dlib_rectangle(face_box(hr_rgb))))


def dlib_embedding(rgb, shape):
    """dlib's 128-D descriptor of the chip that ``shape`` (landmarks, usually the HR's) cuts from ``rgb``."""
    models = dlib_models()
    chip = models['dlib'].get_face_chip(rgb, shape, size=DLIB_CHIP_SIZE, padding=DLIB_CHIP_PADDING)
    return np.array(models['recognizer'].compute_face_descriptor(chip))


def _dlib_similarity(sr_rgb, hr_rgb):
    shape = _dlib_shape(hr_rgb)
    hr_embedding = HR_CACHE.get(hr_rgb, 'dlib_embedding', lambda: dlib_embedding(hr_rgb, shape))
    return cosine_similarity(dlib_embedding(sr_rgb, shape), hr_embedding)


# ---------------------------------------------------------------------------------------------- ONNX backend

@functools.cache
def onnx_session(onnx_path):
    """An onnxruntime CPU session for ``onnx_path``, with its input name and (height, width); cached."""
    try:
        import onnxruntime
    except ImportError as error:
        raise FaceMetricsUnavailable(f'backend onnx needs onnxruntime: {INSTALL_HINT}.') from error
    try:
        session = onnxruntime.InferenceSession(str(onnx_path), providers=['CPUExecutionProvider'])
    except Exception as error:  # onnxruntime raises its own exception types for missing or invalid files
        raise ValueError(f'calculate_identity_similarity: cannot load onnx_path {onnx_path!r}: {error}') from error
    try:
        bad = first_nonfinite_onnx_weight(onnx_path)
    except ImportError:  # the check needs the onnx package, which the face-metrics extra does not install
        bad = None
    if bad is not None:
        raise ValueError(f'calculate_identity_similarity: onnx_path {onnx_path!r}: refused, weight {bad} is not '
                         'finite (NaN or inf); use a sound ArcFace model.')
    model_input = session.get_inputs()[0]
    height, width = model_input.shape[2:4]
    size = (height, width) if isinstance(height, int) and isinstance(width, int) else (112, 112)
    return session, model_input.name, size


def arcface_points(landmarks_68):
    """ArcFace's five points from dlib's 68: eye centres (mean of each eye's six points), nose tip, mouth corners."""
    return np.stack([landmarks_68[36:42].mean(0), landmarks_68[42:48].mean(0), landmarks_68[30],
                     landmarks_68[48], landmarks_68[54]])


def arcface_warp(hr_rgb, input_size):
    """2x3 matrix (OpenCV pixel centres) taking the HR face onto ArcFace's template at ``input_size``."""
    height, width = input_size
    template = ARCFACE_TEMPLATE_112 * np.array([width / 112, height / 112])
    return similarity_transform(arcface_points(hr_landmarks(hr_rgb)), template)


def onnx_embedding(rgb, warp, onnx_path):
    session, input_name, (height, width) = onnx_session(onnx_path)
    crop = cv2.warpAffine(rgb, warp, (width, height), flags=cv2.INTER_LINEAR, borderValue=0)
    blob = ((crop.astype(np.float32) - ARCFACE_MEAN) / ARCFACE_STD).transpose(2, 0, 1)[None]
    return session.run(None, {input_name: np.ascontiguousarray(blob)})[0]


def _onnx_similarity(sr_rgb, hr_rgb, onnx_path):
    warp = arcface_warp(hr_rgb, onnx_session(onnx_path)[2])
    hr_embedding = HR_CACHE.get(hr_rgb, f'onnx_embedding:{onnx_path}', lambda: onnx_embedding(hr_rgb, warp, onnx_path))
    return cosine_similarity(onnx_embedding(sr_rgb, warp, onnx_path), hr_embedding)


def identity_embedding(rgb, hr_rgb, backend='dlib', onnx_path=None):
    """The embedding of ``rgb`` (an SR face, or the HR itself) cut by the HR's landmarks, as the similarity does.

    Face verification on SR faces embeds each face this way, so an SR face is aligned exactly as its HR is.
    ``rgb`` and ``hr_rgb``: uint8 RGB HxWx3 crops of one size.
    """
    rgb = np.ascontiguousarray(rgb)
    if backend == 'dlib':
        return dlib_embedding(rgb, _dlib_shape(hr_rgb))
    return onnx_embedding(rgb, arcface_warp(hr_rgb, onnx_session(onnx_path)[2]), onnx_path).ravel()


@METRIC_REGISTRY.register()
def calculate_identity_similarity(img, img2, backend='dlib', onnx_path=None, input_order='HWC', **kwargs):
    """Cosine similarity (higher is better, 1 for identical faces) of the SR's and the HR's identity embeddings.

    Args:
        img, img2 (ndarray): uint8 BGR aligned face crops (SR and HR), HWC unless ``input_order='CHW'``.
        backend (str): 'dlib' (default; dlib's ResNet-128) | 'onnx' (an ArcFace-style model at ``onnx_path``).
        onnx_path (str): local ONNX file, required for backend 'onnx'.

    Needs the ``face-metrics`` extra; without it raises :class:`FaceMetricsUnavailable` saying what to install.
    """
    if backend not in IDENTITY_BACKENDS:
        raise ValueError(f'calculate_identity_similarity: unknown backend {backend!r}; choose one of '
                         f'{IDENTITY_BACKENDS}.')
    if img.shape != img2.shape:
        raise ValueError(f'Image shapes are different: {img.shape}, {img2.shape}.')
    sr_rgb = as_rgb(img, input_order, 'calculate_identity_similarity')
    hr_rgb = as_rgb(img2, input_order, 'calculate_identity_similarity')
    if backend == 'dlib':
        return _dlib_similarity(sr_rgb, hr_rgb)
    if not onnx_path:
        raise ValueError('calculate_identity_similarity: backend onnx needs onnx_path (a local ArcFace-style .onnx).')
    return _onnx_similarity(sr_rgb, hr_rgb, onnx_path)
