"""SPARNet's training augmentation of the HR face: a random resized crop back to the face's own size.

SPARNet's loader (docs/fidelity.md §B5.1) flips the 128 x 128 HR face, then applies its "Scale" step:
draw ``s ~ U(1.0, 1.3)`` and, when ``int(128 * s) > 128``, replace the face by a torchvision
``RandomResizedCrop`` of it (area fraction in [0.7, 1.0], aspect ratio log-uniform in [3/4, 4/3],
resized to 128 x 128 with PIL bicubic). The step fires when ``s >= 129 / 128``, i.e. with
probability ``(1.3 - 129 / 128) / 0.3 = 0.974``, and otherwise leaves the face unchanged (its
zoom-out branch cannot run). The LR face is then made from the augmented HR face, so the pair
always matches.

Randomness: the crop box comes from torchvision's ``RandomResizedCrop.get_params`` (torch's
generator) and the coin from Python's ``random``, which BasicSR seeds (``manual_seed``) in the main
process and per DataLoader worker, so a run is reproducible.
"""
import random
from dataclasses import dataclass
from typing import Tuple

import numpy as np
from PIL import Image
from torchvision.transforms import RandomResizedCrop


def _pair(value, name, where):
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value)):
        raise ValueError(f'{where}.{name}: expected two numbers [low, high], got {value!r}.')
    low, high = float(value[0]), float(value[1])
    if not 0 < low <= high:
        raise ValueError(f'{where}.{name}: expected 0 < low <= high, got {value!r}.')
    return low, high


@dataclass(frozen=True)
class RandomResizedFaceCrop:
    """Crop a random box (area fraction ``scale``, aspect ratio ``ratio``) and resize it back with PIL bicubic.

    ``probability`` is the chance that the crop happens at all (SPARNet: 0.974, see the module docstring).
    """
    scale: Tuple[float, float] = (0.7, 1.0)
    ratio: Tuple[float, float] = (3 / 4, 4 / 3)
    probability: float = 1.0

    @classmethod
    def from_options(cls, options, where='random_resized_crop'):
        """Build from a dataset option mapping; unknown keys and bad values are errors naming ``where``."""
        if not isinstance(options, dict):
            raise ValueError(f'{where}: expected a mapping with scale, ratio and probability, got {options!r}.')
        unknown = set(options) - {'scale', 'ratio', 'probability'}
        if unknown:
            raise ValueError(f'{where}: unknown keys {sorted(unknown)}; expected scale, ratio, probability.')
        scale = _pair(options.get('scale', cls.scale), 'scale', where)
        if scale[1] > 1:
            raise ValueError(f'{where}.scale: the area fraction cannot exceed 1, got {list(scale)}.')
        probability = float(options.get('probability', cls.probability))
        if not 0 <= probability <= 1:
            raise ValueError(f'{where}.probability: expected a number in [0, 1], got {probability}.')
        return cls(scale, _pair(options.get('ratio', cls.ratio), 'ratio', where), probability)

    def __call__(self, rgb):
        """The augmented ``H x W x 3`` uint8 face, of the same size as ``rgb``."""
        if random.random() >= self.probability:
            return rgb
        image = Image.fromarray(rgb)
        top, left, height, width = RandomResizedCrop.get_params(image, list(self.scale), list(self.ratio))
        crop = image.crop((left, top, left + width, top + height))
        return np.array(crop.resize(image.size, Image.Resampling.BICUBIC))

