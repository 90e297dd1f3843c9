"""NIQE for restored faces without ground truth: BasicSR's implementation and its shipped pristine parameters.

BasicSR's :func:`basicsr.metrics.niqe.calculate_niqe` (registered as ``calculate_niqe``; lower is better) reads
``niqe_pris_params.npz`` from inside the basicsr package, so nothing is downloaded. It fits a Gaussian to the
features of 96x96 blocks (and of the half-size image's 48x48 blocks) and needs at least two blocks: images smaller
than 192x96 (e.g. 128x128 face crops) have no NIQE, which :func:`niqe_size_problem` says before any work.
"""
import numpy as np
from basicsr.metrics.niqe import calculate_niqe
from PIL import Image

NIQE_BLOCK = 96


def niqe_size_problem(height, width):
    """None if NIQE can score an image of this size, else a one-line reason."""
    if min(height, width) >= NIQE_BLOCK and max(height, width) >= 2 * NIQE_BLOCK:
        return None
    return (f'NIQE needs at least two {NIQE_BLOCK}x{NIQE_BLOCK} blocks (an image of {2 * NIQE_BLOCK}x{NIQE_BLOCK} '
            f'pixels or more), got {width}x{height}')


def niqe(rgb):
    """NIQE of a uint8 RGB HxWx3 image on its Y channel, no border crop (BasicSR's defaults)."""
    return float(calculate_niqe(np.ascontiguousarray(rgb[..., ::-1]), crop_border=0, input_order='HWC',
                                convert_to='y'))


def niqe_before_after(input_crop, restored):
    """``(before, after)`` NIQE of a face: the network's aligned input and its output.

    An input smaller than the output (an SR network's LR face) is first enlarged to the output's size with PIL's
    bicubic filter, so that both are scored at the size the face is shown. Raises ValueError when the faces are
    too small for NIQE.
    """
    height, width = restored.shape[:2]
    problem = niqe_size_problem(height, width)
    if problem:
        raise ValueError(problem)
    if input_crop.shape[:2] != (height, width):
        input_crop = np.asarray(Image.fromarray(input_crop).resize((width, height), Image.BICUBIC))
    return niqe(input_crop), niqe(restored)
