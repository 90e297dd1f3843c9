"""SPARNetHD's degradation chain: a real-looking low-quality face made from a clean HR face.

The official SPARNetHD data loader (``data/ffhq_dataset.py`` of chaofengc/Face-SPARNet,
``docs/fidelity.md`` §B7) made each
training input on the fly with ``imgaug``; this module re-implements that chain with BasicSR's degradation
functions (``basicsr.data.degradations``: the Gaussian kernel and the Gaussian noise) and OpenCV, without imgaug::

    HR (uint8 RGB) --p 0.3--> greyscale (HR and LR both: the LR follows the HR)
       --p 0.5--> one of {Gaussian blur sigma 3-15 | average blur k 3-15 | median blur k 3-15 (odd) |
                          motion blur k 5-25}                                            (uniform choice)
       --> resize to s x s, s uniform in 32..127, interpolation uniform in {nearest, linear, area, cubic}
       --p 0.2--> additive Gaussian noise, sigma uniform in [0, 0.1 * 255], per channel with p 0.5
       --p 0.7--> JPEG, quality uniform in 35..90 (imgaug's compression 10-65)
       --> resize back to the HR size (or HR / scale) with bicubic, clipped to [0, 1]

Every random draw comes from the ``numpy.random.Generator`` passed in, in a fixed order, so one seed gives one
LR image; :func:`degrade_face` also returns a :class:`DegradationRecord` of what was applied (which steps, with
which parameters), which is what makes the probabilities testable. BasicSR's Gaussian-noise function draws
from numpy's global generator: it runs under :func:`numpy_global_seed`, seeded from the same ``Generator``,
and the global state is restored afterwards.

The sizes (32..127) are absolute pixels, as in the official code for 512x512 faces; scale them for other
HR sizes (``FaceDegradation.down_size_range``).
"""
import math
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Tuple

import cv2
import numpy as np
from basicsr.data.degradations import add_gaussian_noise, bivariate_Gaussian

BLUR_KINDS = ('gaussian', 'average', 'median', 'motion')
INTERPOLATIONS = {'nearest': cv2.INTER_NEAREST, 'linear': cv2.INTER_LINEAR, 'area': cv2.INTER_AREA,
                  'cubic': cv2.INTER_CUBIC}
GAUSSIAN_TRUNCATE = 3.0  # kernel radius in sigmas (what OpenCV's GaussianBlur uses for 8-bit images)


@dataclass(frozen=True)
class FaceDegradation:
    """Probabilities and ranges of the chain (defaults: SPARNetHD's official values, §B7).

    Ranges are inclusive ``(low, high)`` pairs; integer ranges (kernel sizes, sizes, qualities) are drawn
    uniformly among the integers, float ranges (sigmas) uniformly in the interval.
    """

    grey_prob: float = 0.3
    blur_prob: float = 0.5
    gaussian_sigma_range: Tuple[float, float] = (3.0, 15.0)
    average_kernel_range: Tuple[int, int] = (3, 15)
    median_kernel_range: Tuple[int, int] = (3, 15)  # odd sizes only (OpenCV's median needs them)
    motion_kernel_range: Tuple[int, int] = (5, 25)
    down_size_range: Tuple[int, int] = (32, 127)
    interpolations: Tuple[str, ...] = tuple(INTERPOLATIONS)
    noise_prob: float = 0.2
    noise_sigma_range: Tuple[float, float] = (0.0, 0.1 * 255)  # on the 0-255 scale
    noise_per_channel_prob: float = 0.5
    jpeg_prob: float = 0.7
    jpeg_quality_range: Tuple[int, int] = (35, 90)

    def __post_init__(self):
        for name in ('grey_prob', 'blur_prob', 'noise_prob', 'noise_per_channel_prob', 'jpeg_prob'):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f'degradation {name} must be a probability in [0, 1], got {value}.')
        for name in ('gaussian_sigma_range', 'average_kernel_range', 'median_kernel_range', 'motion_kernel_range',
                     'down_size_range', 'noise_sigma_range', 'jpeg_quality_range'):
            value = getattr(self, name)
            if len(value) != 2 or not 0 <= value[0] <= value[1]:
                raise ValueError(f'degradation {name} must be [low, high] with 0 <= low <= high, got {list(value)}.')
            object.__setattr__(self, name, tuple(value))  # YAML gives lists
        if self.down_size_range[0] < 1 or self.average_kernel_range[0] < 1 or self.motion_kernel_range[0] < 1:
            raise ValueError('degradation down_size_range, average_kernel_range and motion_kernel_range must start '
                             'at 1 or more.')
        if not any(size % 2 for size in range(self.median_kernel_range[0], self.median_kernel_range[1] + 1)):
            raise ValueError(f'degradation median_kernel_range {list(self.median_kernel_range)} holds no odd size.')
        if not 1 <= self.jpeg_quality_range[0] <= self.jpeg_quality_range[1] <= 100:
            raise ValueError('degradation jpeg_quality_range must lie in [1, 100], '
                             f'got {list(self.jpeg_quality_range)}.')
        unknown = [name for name in self.interpolations if name not in INTERPOLATIONS]
        if not self.interpolations or unknown:
            raise ValueError(f'degradation interpolations {list(self.interpolations)}: expected a non-empty list of '
                             f'{sorted(INTERPOLATIONS)}.')
        object.__setattr__(self, 'interpolations', tuple(self.interpolations))

    @classmethod
    def from_options(cls, options):
        """From an option-file mapping; unknown keys are an error naming them."""
        options = dict(options or {})
        unknown = sorted(set(options) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f'degradation: unknown option(s) {unknown}; known: {sorted(cls.__dataclass_fields__)}.')
        return cls(**options)


@dataclass
class DegradationRecord:
    """What :func:`degrade_face` did to one image. ``None`` means the step was not applied."""

    grey: bool = False
    blur: str | None = None            # one of BLUR_KINDS
    blur_parameter: float | None = None  # sigma (gaussian) or kernel size (average, median, motion)
    down_size: int = 0
    interpolation: str = ''
    noise_sigma: float | None = None   # on the 0-255 scale
    noise_per_channel: bool | None = None
    jpeg_quality: int | None = None
    extra: dict = field(default_factory=dict)  # motion blur angle and direction

    def as_dict(self):
        return asdict(self)


@contextmanager
def numpy_global_seed(rng):
    """Seed numpy's global generator from ``rng`` for the block (BasicSR's noise uses it), then restore it."""
    state = np.random.get_state()
    np.random.seed(int(rng.integers(2 ** 32)))
    try:
        yield
    finally:
        np.random.set_state(state)


def _uniform_int(rng, bounds):
    return int(rng.integers(bounds[0], bounds[1] + 1))


def to_greyscale(rgb):
    """``H x W x 3`` uint8 RGB -> the same image in grey (ITU-R 601 luma, as OpenCV), still 3 channels."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return np.repeat(grey[:, :, None], 3, axis=2)


def motion_kernel(size, angle_degrees, direction):
    """A ``size`` x ``size`` line kernel through the centre at ``angle_degrees``, summing to 1.

    ``direction`` in [-1, 1] weights the line's two ends (0: uniform; 1 or -1: a linear ramp towards one end),
    like imgaug's ``MotionBlur``.
    """
    kernel = np.zeros((size, size), np.float32)
    start = (direction + 1) / 2
    kernel[:, size // 2] = np.linspace(start, 1 - start, size)
    centre = ((size - 1) / 2, (size - 1) / 2)
    rotation = cv2.getRotationMatrix2D(centre, angle_degrees, 1.0)
    kernel = cv2.warpAffine(kernel, rotation, (size, size), flags=cv2.INTER_LINEAR)
    total = kernel.sum()
    if total <= 0:  # a fully one-sided ramp on a 1-pixel kernel: fall back to the identity
        kernel = np.zeros((size, size), np.float32)
        kernel[size // 2, size // 2] = 1
        return kernel
    return kernel / total


def jpeg_roundtrip(image, quality):
    """Encode a float32 RGB image in [0, 1] as a JPEG of ``quality`` and decode it (OpenCV, 4:2:0 chroma).

    Not BasicSR's ``add_jpg_compression``: it hands OpenCV a float image, which OpenCV converts to 8 bits itself
    with a warning on every call, and it takes BGR (RGB would be subsampled with the wrong chroma weights).
    """
    bgr = np.clip(np.rint(image[:, :, ::-1] * 255), 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode('.jpg', bgr, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise RuntimeError(f'OpenCV could not JPEG-encode a {bgr.shape} image.')
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)[:, :, ::-1].astype(np.float32) / 255


def apply_blur(image, kind, rng, config, record):
    """Blur a float32 ``H x W x 3`` image in [0, 1] with ``kind``, its parameter drawn from ``rng``."""
    if kind == 'gaussian':
        sigma = float(rng.uniform(*config.gaussian_sigma_range))
        record.blur_parameter = sigma
        if sigma == 0:
            return image
        kernel = bivariate_Gaussian(2 * math.ceil(GAUSSIAN_TRUNCATE * sigma) + 1, sigma, sigma, 0, isotropic=True)
        return cv2.filter2D(image, -1, kernel.astype(np.float32), borderType=cv2.BORDER_REFLECT_101)
    if kind == 'average':
        size = _uniform_int(rng, config.average_kernel_range)
        record.blur_parameter = size
        return cv2.blur(image, (size, size), borderType=cv2.BORDER_REFLECT_101)
    if kind == 'median':
        odd_sizes = [s for s in range(config.median_kernel_range[0], config.median_kernel_range[1] + 1) if s % 2]
        size = int(odd_sizes[rng.integers(len(odd_sizes))])
        record.blur_parameter = size
        # OpenCV's median filter takes float32 only up to 5x5: filter the 8-bit image, as imgaug did.
        as_uint8 = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
        return cv2.medianBlur(as_uint8, size).astype(np.float32) / 255
    size = _uniform_int(rng, config.motion_kernel_range)
    angle, direction = float(rng.uniform(0, 360)), float(rng.uniform(-1, 1))
    record.blur_parameter = size
    record.extra.update(motion_angle=angle, motion_direction=direction)
    return cv2.filter2D(image, -1, motion_kernel(size, angle, direction), borderType=cv2.BORDER_REFLECT_101)


def degrade_face(hr, rng, config=FaceDegradation(), out_size=None):
    """Degrade one face: returns ``(hr, lr, record)``.

    Args:
        hr: ``H x W x 3`` uint8 RGB HR face.
        rng: a ``numpy.random.Generator``; the same state gives the same result.
        config: the chain's probabilities and ranges.
        out_size: ``(width, height)`` of the LR image (default: the HR size, SPARNetHD's setting).

    Returns:
        ``hr`` (uint8 RGB; greyscale when that step was applied), ``lr`` (float32 RGB in [0, 1]) and the
        :class:`DegradationRecord`. The random decisions are drawn in a fixed order whatever is applied.
    """
    record = DegradationRecord()
    height, width = hr.shape[:2]
    out_size = out_size or (width, height)

    record.grey = bool(rng.random() < config.grey_prob)
    if record.grey:
        hr = to_greyscale(hr)
    image = hr.astype(np.float32) / 255

    if rng.random() < config.blur_prob:
        record.blur = BLUR_KINDS[int(rng.integers(len(BLUR_KINDS)))]
        image = apply_blur(image, record.blur, rng, config, record)

    record.down_size = _uniform_int(rng, config.down_size_range)
    record.interpolation = config.interpolations[int(rng.integers(len(config.interpolations)))]
    image = cv2.resize(image, (record.down_size, record.down_size), interpolation=INTERPOLATIONS[record.interpolation])
    image = np.clip(image, 0, 1)  # cubic overshoots; the official chain worked on uint8 images

    if rng.random() < config.noise_prob:
        record.noise_sigma = float(rng.uniform(*config.noise_sigma_range))
        record.noise_per_channel = bool(rng.random() < config.noise_per_channel_prob)
        with numpy_global_seed(rng):
            image = add_gaussian_noise(image, sigma=record.noise_sigma, clip=True, rounds=True,
                                       gray_noise=not record.noise_per_channel).astype(np.float32)

    if rng.random() < config.jpeg_prob:
        record.jpeg_quality = _uniform_int(rng, config.jpeg_quality_range)
        image = jpeg_roundtrip(image, record.jpeg_quality)

    lr = cv2.resize(np.ascontiguousarray(image), tuple(out_size), interpolation=cv2.INTER_CUBIC)
    return hr, np.clip(lr, 0, 1).astype(np.float32), record
