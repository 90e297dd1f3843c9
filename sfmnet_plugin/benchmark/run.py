"""The benchmark run: score every method on every test image and write the comparison."""
import os
import platform
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from os import path as osp

import numpy as np
import torch
from basicsr.metrics import calculate_metric
from tqdm import tqdm

from sfmnet_plugin.benchmark.columns import METRIC_NOTES, resolve_columns
from sfmnet_plugin.benchmark.errors import BenchmarkError
from sfmnet_plugin.benchmark.methods import (
    Bicubic,
    Cost,
    Network,
    Runner,
    SrFolder,
    TestSet,
    hr_sizes,
    tensor_to_rgb,
)
from sfmnet_plugin.benchmark.outputs import OUTPUT_FILES, write_outputs
from sfmnet_plugin.benchmark.set_metrics import HR_ROW, VerificationRun, prepare_fid
from sfmnet_plugin.metrics.fid import FidError
from sfmnet_plugin.metrics.no_reference import niqe_size_problem
from sfmnet_plugin.utils.output_guard import OutputPlan


@dataclass
class BenchmarkResult:
    """Everything the benchmark measured; ``means[method][column]`` are what ``table.csv`` holds."""

    test_set: str
    scale: int
    methods: list
    kinds: dict
    columns: list
    per_image: list
    means: dict
    costs: dict
    sources: dict = field(default_factory=dict)  # 'test set' and every method -> what it was made of
    notes: list = field(default_factory=list)
    files: dict = field(default_factory=dict)
    spreads: dict = field(default_factory=dict)  # method -> column -> standard deviation shown as "mean ± std"
    roc_curves: dict = field(default_factory=dict)  # method (and HR) -> (FAR, TAR, AUC)
    pair_scores: list = field(default_factory=list)  # rows of pair_scores.csv


# Rows and columns the benchmark makes itself: the HR upper bound (verification) and the contact sheet's LR and HR
# columns; 'Bicubic' is the bicubic baseline's (a network or folder under that name would pass for it).
RESERVED_METHOD_NAMES = {HR_ROW: 'the HR upper bound', 'LR': "the contact sheet's LR column"}
BICUBIC_NAME = 'Bicubic'


def _check_methods(methods):
    if not methods:
        raise BenchmarkError('no method to compare: give at least one network, bicubic or SR folder.')
    names = [method.name for method in methods]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise BenchmarkError(f'method names must be unique; repeated: {", ".join(repeated)}.')
    for method in methods:
        # a row of table.md and a column of pair_scores.csv: 'HR ' would stand beside the HR column as another
        if not method.name.strip() or method.name != method.name.strip() or any(c in method.name for c in '|\n\r'):
            raise BenchmarkError(f'method name {method.name!r}: expected a name without surrounding spaces, line '
                                 "breaks or '|'; choose another name.")
        if method.name in RESERVED_METHOD_NAMES:
            raise BenchmarkError(f'method name {method.name!r} is reserved for {RESERVED_METHOD_NAMES[method.name]}; '
                                 'choose another name.')
        if method.name == BICUBIC_NAME and method.kind != 'bicubic':
            raise BenchmarkError(f'method name {BICUBIC_NAME!r} is reserved for the bicubic baseline (--bicubic); '
                                 f'give the {method.kind} another name.')


def _input_paths(test_set, methods, extra):
    """``[(label, path)]`` of every file and folder the benchmark reads (for the output guard)."""
    inputs = [('--gt test set', test_set.gt), ('--lq test set', test_set.lq)]
    for method in methods:
        for attribute in ('checkpoint', 'option_file', 'folder'):
            if getattr(method, attribute, None):
                inputs.append((f'{attribute.replace("_", " ")} of method {method.name}', getattr(method, attribute)))
    return inputs + [(label, path) for label, path in extra.items() if path]


def _plan_outputs(out_dir, overwrite, inputs):
    """The output guard's plan of the benchmark's files: never among or over an input, never through a link."""
    plan = OutputPlan(out_dir, inputs, option='output folder')
    for name in OUTPUT_FILES:
        plan.add(osp.join(out_dir, name))
    plan.check()
    existing = [name for name in OUTPUT_FILES if osp.exists(osp.join(out_dir, name))]
    if existing and not overwrite:
        raise BenchmarkError(f'{out_dir} already holds benchmark results ({", ".join(existing)}); choose another '
                             'output folder or allow overwriting them (--overwrite).')
    return plan


def run_benchmark(test_set: TestSet, methods: Sequence[Bicubic | Network | SrFolder], out_dir: str,
                  metrics: Iterable[str] | None = None, lpips_weights: str | None = None,
                  arcface_onnx: str | None = None, device: str = 'auto', latency_repeats: int = 5,
                  sheet_images: int = 4, overwrite: bool = False, progress: bool = True, pairs: str | None = None,
                  recognizer: str = 'dlib', fid_reference: str | None = None,
                  fid_weights: str | None = None, landmark_checkpoint: str | None = None) -> BenchmarkResult:
    """Score ``methods`` on ``test_set`` and write the comparison to ``out_dir``; returns a :class:`BenchmarkResult`.

    Args:
        test_set (TestSet): the HR (and LR) images.
        methods (list): :class:`Network`, :class:`Bicubic` and :class:`SrFolder` objects, in table order.
        out_dir (str): where the five output files go (created; existing results are kept unless ``overwrite``).
        metrics (list[str], optional): metric groups from :data:`ALL_METRICS`. Default: :data:`DEFAULT_METRICS`
            that can run here (LPIPS needs the AlexNet weights, identity and NME the face-metrics extra); those that
            cannot are left out with a note in ``table.md``. A metric named explicitly must run.
        lpips_weights, arcface_onnx (str, optional): local weight files (see ``calculate_lpips`` and
            ``calculate_identity_similarity``).
        device (str): where networks run: 'auto' | 'cpu' | 'cuda'.
        latency_repeats (int): timed batch-1 forward passes per network (median reported); 0 skips latency.
        sheet_images (int): rows of the contact sheet (evenly spread over the test set).
        progress (bool): show a progress bar.
        pairs (str, optional): a verification pair list (LFW ``pairs.txt``, CSV or YTF ``splits.txt``, see
            :mod:`sfmnet_plugin.metrics.verification`) naming test images: adds 10-fold verification accuracy, AUC
            and TAR@FAR columns, ``roc.png`` and ``pair_scores.csv`` (HR faces as the upper bound).
        recognizer (str): the verification's recognition network, 'dlib' (default) | 'arcface' (``arcface_onnx``).
        fid_reference (str, optional): metric ``fid``'s reference: a folder, an LMDB or an ``.npz`` of statistics
            (default: the test set's HR images).
        fid_weights (str, optional): local ``pt_inception-2015-12-05-6726825d.pth`` (default: the pretrained
            folders, see :mod:`sfmnet_plugin.utils.pretrained`).
        landmark_checkpoint (str, optional): metric ``nme`` with a trained DIC's hourglass as the landmark
            detector (a DIC checkpoint or ``FB_HG_68_CelebA.pth``) instead of dlib's.
    """
    _check_methods(methods)
    plan = _plan_outputs(out_dir, overwrite, _input_paths(test_set, methods, {
        '--pairs list': pairs, '--fid-reference': fid_reference, '--fid-weights': fid_weights,
        '--lpips-weights': lpips_weights, '--arcface-onnx': arcface_onnx}))
    notes: list[str] = []
    columns, metric_groups = resolve_columns(None if metrics is None else list(metrics), test_set.scale,
                                             lpips_weights, arcface_onnx, notes, landmark_checkpoint)
    dataset = test_set.dataset()
    notes += [f'{path}: skipped, {reason}' for path, reason in dataset.skipped]
    sizes = hr_sizes(dataset)
    _check_niqe_size(metric_groups, sizes)
    torch_device = 'cuda' if device != 'cpu' and torch.cuda.is_available() else 'cpu'
    verification = VerificationRun.prepare(pairs, dataset.keys, recognizer, arcface_onnx) if pairs else None
    fid = prepare_fid(fid_reference, test_set.gt, fid_weights, torch_device) if 'fid' in metric_groups else None
    if verification:
        columns += verification.columns()
    runners: dict[str, Runner] = {}
    costs: dict[str, Cost] = {}
    for method in methods:
        runners[method.name], costs[method.name] = method.prepare(test_set, sizes, device, latency_repeats)
    load_average = os.getloadavg()[0]  # right after the latency measurements: how busy the machine was

    per_image, panels = _score_images(dataset, sizes, methods, runners, columns,
                                      contact_sheet_keys(dataset.keys, sheet_images),
                                      progress_title=f'benchmark {test_set.title}' if progress else None,
                                      set_metrics=(verification, fid))
    means = {method.name: {column.name: float(np.mean([row[column.name] for row in per_image
                                                       if row['method'] == method.name]))
                           for column in columns if column.per_image} for method in methods}
    spreads, curves, pair_rows = {}, {}, []
    if fid:
        for method in methods:
            try:
                means[method.name]['fid'] = fid.fid(method.name)
            except FidError as error:
                raise BenchmarkError(f'metric fid: {error}') from error
    if verification:
        values, spreads, curves, scores = verification.evaluate([method.name for method in methods])
        for method in methods:
            means[method.name].update(values[method.name])
        pair_rows = verification.pair_rows(scores)
        notes += verification.notes(values, spreads)
    notes += [METRIC_NOTES['nme_dic' if group == 'nme' and landmark_checkpoint else group]
              for group in metric_groups]
    notes.append(_cost_note(device, latency_repeats, load_average))
    sources = {'test set': test_set.describe(), **{method.name: method.describe() for method in methods}}
    result = BenchmarkResult(test_set.title, test_set.scale, [m.name for m in methods],
                             {m.name: m.kind for m in methods}, columns, per_image, means, costs, sources, notes,
                             spreads=spreads, roc_curves=curves, pair_scores=pair_rows)
    with plan:
        plan.make_folder()
        write_outputs(result, out_dir, panels)
    return result


def contact_sheet_keys(keys, count):
    """``count`` keys spread evenly over ``keys`` (first and last included), in order."""
    if not count:
        return []
    indices = np.linspace(0, len(keys) - 1, min(count, len(keys))).round().astype(int)
    return [keys[i] for i in sorted(set(indices))]


def _bgr(rgb_or_tensor):
    rgb = tensor_to_rgb(rgb_or_tensor) if isinstance(rgb_or_tensor, torch.Tensor) else rgb_or_tensor
    return np.ascontiguousarray(rgb[..., ::-1])


def _check_niqe_size(metric_groups, sizes):
    if 'niqe' not in metric_groups:
        return
    small = sorted(key for key, size in sizes.items() if niqe_size_problem(*size))
    if small:
        raise BenchmarkError(f'metric niqe cannot score {len(small)} test images, e.g. {small[0]}: '
                             f'{niqe_size_problem(*sizes[small[0]])}; leave niqe out for small faces.')


def _score_images(dataset, sizes, methods, runners, columns, sheet_keys, progress_title, set_metrics=(None, None)):
    """Per-image rows (one per image and method) and the contact-sheet panels of ``sheet_keys``.

    The set-level metrics (``set_metrics``: verification, FID) are fed every SR image (and the HR faces) on the way.
    """
    verification, fid = set_metrics
    per_image, panels = [], []
    with tqdm(total=len(dataset.keys) * len(methods), unit='img', desc=progress_title,
              disable=None if progress_title else True) as bar:
        for index, key in enumerate(dataset.keys):
            try:
                sample = dataset[index]
            except (OSError, ValueError, KeyError) as error:
                raise BenchmarkError(f'test set: {error}') from error
            hr_bgr = _bgr(sample['gt'])
            hr_rgb = np.ascontiguousarray(hr_bgr[..., ::-1])
            if verification:
                verification.add(HR_ROW, key, hr_rgb, hr_rgb)
            sr_images = []
            for method in methods:
                sr_bgr = _bgr(runners[method.name].super_resolve(key, sample['lq'], sizes[key]))
                sr_rgb = np.ascontiguousarray(sr_bgr[..., ::-1])
                if verification:
                    verification.add(method.name, key, sr_rgb, hr_rgb)
                if fid:
                    fid.add(method.name, sr_rgb)
                row = {'image': key, 'method': method.name}
                for column in (column for column in columns if column.per_image):
                    # BasicSR's metric call, as in validation: uint8 BGR, SR then HR
                    row[column.name] = float(calculate_metric({'img': sr_bgr, 'img2': hr_bgr}, column.options))
                per_image.append(row)
                sr_images.append(sr_bgr)
                bar.update()
            if key in sheet_keys:
                panels.append((key, [_bgr(sample['lq']), *sr_images, hr_bgr]))
    return per_image, panels


def _cost_note(device, latency_repeats, load_average):
    macs = 'MACs: Conv2d + ConvTranspose2d + Linear multiply-accumulates per image.'
    if not latency_repeats:
        return f'{macs} Latency not measured.'
    where = torch.cuda.get_device_name() if device != 'cpu' and torch.cuda.is_available() else \
        f'CPU ({platform.processor() or platform.machine()}, torch threads: {torch.get_num_threads()})'
    return (f'{macs} Latency: median of {latency_repeats} batch-1 forward passes on {where}; 1-minute system load '
            f'{load_average:.1f} when measured.')


