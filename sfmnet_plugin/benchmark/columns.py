"""The benchmark's metric columns: which registered metric, its options, which way is better."""
from dataclasses import dataclass

import numpy as np
from basicsr.metrics import calculate_metric

from sfmnet_plugin.benchmark.errors import BenchmarkError
from sfmnet_plugin.inference.dic_landmarks import dic_landmark_detector
from sfmnet_plugin.metrics.face_psnr_ssim_metric import PROTOCOLS


@dataclass(frozen=True)
class Column:
    """One metric column: the registered metric and its options, which way is better, the table's format.

    ``per_image``: False for the set-level metrics (FID, verification), computed over a method's whole output and
    absent from ``per_image.csv``.
    """

    name: str
    title: str
    options: dict
    higher_is_better: bool
    digits: int
    per_image: bool = True


def metric_columns(metric, scale, lpips_weights=None, arcface_onnx=None, landmark_checkpoint=None):
    """The columns of a metric group name (``sfmnet``, ``sparnet``, ``dic``: PSNR and SSIM; the others: one).

    ``landmark_checkpoint``: NME with a trained DIC's hourglass (a DIC checkpoint or ``FB_HG_68_CelebA.pth``)
    instead of dlib.
    """
    if metric in PROTOCOLS:
        crop = {'crop_border': scale} if metric == 'dic' else {}
        return [Column(f'psnr_{metric}', f'PSNR ({metric})', {'type': 'calculate_face_psnr', 'protocol': metric,
                                                             **crop}, True, 2),
                Column(f'ssim_{metric}', f'SSIM ({metric})', {'type': 'calculate_face_ssim', 'protocol': metric,
                                                             **crop}, True, 4)]
    if metric == 'lpips':
        return [Column('lpips', 'LPIPS', {'type': 'calculate_lpips', 'net': 'alex', 'protocol': 'standard',
                                          'weights_path': lpips_weights, 'weights_option': '--lpips-weights'},
                       False, 4)]
    if metric == 'identity':
        return [Column('identity', 'ID sim. (dlib)', {'type': 'calculate_identity_similarity', 'backend': 'dlib'},
                       True, 4)]
    if metric == 'identity_arcface':
        if not arcface_onnx:
            raise BenchmarkError('metric identity_arcface needs the ArcFace ONNX file (arcface_onnx / --arcface-onnx).')
        return [Column('identity_arcface', 'ID sim. (ArcFace)', {'type': 'calculate_identity_similarity',
                                                                 'backend': 'onnx', 'onnx_path': arcface_onnx},
                       True, 4)]
    if metric == 'nme' and landmark_checkpoint:
        return [Column('nme', 'NME (DIC HG)', {'type': 'calculate_landmark_nme',
                                               'detector': dic_landmark_detector(landmark_checkpoint)}, False, 4)]
    if metric == 'nme':
        return [Column('nme', 'NME', {'type': 'calculate_landmark_nme'}, False, 4)]
    if metric == 'niqe':  # no reference: the SR image alone (BasicSR's NIQE, its shipped pristine parameters)
        return [Column('niqe', 'NIQE', {'type': 'calculate_niqe', 'crop_border': 0}, False, 4)]
    if metric == 'fid':  # computed over the whole set by benchmark.set_metrics
        return [Column('fid', 'FID', {}, False, 2, per_image=False)]
    raise BenchmarkError(f'unknown metric {metric!r}; choose from {ALL_METRICS}.')


ALL_METRICS = ('sfmnet', 'sparnet', 'dic', 'lpips', 'identity', 'nme', 'identity_arcface', 'niqe', 'fid')
NEEDS_NOTHING = (*PROTOCOLS, 'niqe', 'fid')  # nothing to probe here: niqe's size and fid's weights are checked by run


DEFAULT_METRICS = ('sfmnet', 'sparnet', 'dic', 'lpips', 'identity', 'nme')


METRIC_NOTES = {
    'sfmnet': 'sfmnet: rounded BT.601 Y, 8-px border crop, skimage SSIM (7x7 uniform window); the SFMNet/DIC tables.',
    'sparnet': 'sparnet: truncated Y, no crop, Gaussian SSIM (sigma 1.5); the SPARNet/CTCNet/WFEN tables.',
    'dic': 'dic: BasicSR Y PSNR/SSIM, border crop = scale.',
    'lpips': 'LPIPS: AlexNet v0.1 on RGB in [-1, 1] (lower is better).',
    'identity': 'ID sim. (dlib): cosine similarity of dlib ResNet-128 embeddings, SR vs HR, on chips aligned by the '
                'HR landmarks.',
    'identity_arcface': 'ID sim. (ArcFace): cosine similarity of ArcFace ONNX embeddings, ArcFace-aligned by the HR '
                        'landmarks.',
    'nme': 'NME: dlib 68-point landmarks of SR vs HR, normalised by the HR inter-ocular distance (lower is better).',
    'nme_dic': "NME (DIC HG): a trained DIC hourglass's 68 landmarks (heatmap peaks, 4-px grid) of SR vs HR, "
               'normalised by the HR inter-ocular distance (lower is better).',
    'niqe': "NIQE: BasicSR's no-reference NIQE of the SR image alone (Y channel, 96x96 blocks; lower is better).",
    'fid': 'FID: pytorch-fid/BasicSR definition (FID Inception pool3, 299x299 bilinear), SR set vs the reference set; '
           'depends on the set size (lower is better).',
}


def check_metric_available(column):
    """None if the metric runs on a grey probe image, else why not, before any work: a missing, unreadable or corrupt
    weight file (refused files are ValueErrors, unreadable ones OSErrors) or a missing extra."""
    probe = np.full((128, 128, 3), 128, np.uint8)
    try:
        calculate_metric({'img': probe, 'img2': probe}, column.options)
    except (ImportError, OSError, ValueError) as error:
        return str(error)
    return None


def resolve_columns(metrics, scale, lpips_weights, arcface_onnx, notes, landmark_checkpoint=None):
    """Columns of ``metrics`` (None: :data:`DEFAULT_METRICS` that can run here; what cannot is noted in ``notes``).

    A metric named explicitly that cannot run is an error.
    """
    explicit = metrics is not None
    chosen = []
    for metric in dict.fromkeys(metrics if explicit else DEFAULT_METRICS):  # each once, in the given order
        columns = metric_columns(metric, scale, lpips_weights, arcface_onnx, landmark_checkpoint)
        if metric in NEEDS_NOTHING:
            chosen.append((metric, columns))
            continue
        problem = check_metric_available(columns[0])
        if problem is None:
            chosen.append((metric, columns))
        elif explicit:
            raise BenchmarkError(f'metric {metric} cannot run: {problem}')
        else:
            notes.append(f'{metric} left out: {problem}')
    if not chosen:
        raise BenchmarkError('no metric to compute.')
    return [column for _, columns in chosen for column in columns], [metric for metric, _ in chosen]
