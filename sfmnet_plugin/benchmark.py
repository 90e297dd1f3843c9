"""Compare face-SR methods on one test set with one metric code: :func:`run_benchmark` (and ``sfmnet-benchmark``).

A method is a network of BasicSR's registry with its checkpoint (:class:`Network`, loaded by
:class:`~sfmnet_plugin.inference.FaceRestorer`), the bicubic baseline (:class:`Bicubic`) or a folder of SR images
that any other code wrote (:class:`SrFolder`, e.g. another paper's released results). Every method is scored on
the same HR images by the same registered metric functions under the named protocols, so the numbers are
comparable however the SR images were made::

    import sfmnet_plugin
    from sfmnet_plugin.benchmark import Bicubic, Network, SrFolder, TestSet, run_benchmark

    result = run_benchmark(
        TestSet('datasets/CelebA/test/HR.lmdb', 'datasets/CelebA/test/LR_x8.lmdb', scale=8, name='CelebA'),
        [Bicubic(), Network('SFMNet', 'experiments/train_SFMNet_x8/models/net_g_latest.pth',
                            'options/train_SFMNet_x8.yml'), SrFolder('DIC', 'results/DIC/CelebA')],
        'benchmark/CelebA_x8')

It writes, each file atomically, ``table.md`` (the paper-style table, best in bold), ``table.csv`` (means, full
precision), ``per_image.csv``, ``contact_sheet.png`` (LR, one column per method, HR) and ``quality_vs_cost.png``
(PSNR against parameters). Everything that can fail for a user's reason (a missing or mis-sized SR image, a
checkpoint that does not fit, a missing weight file or extra) fails before the output folder is touched.
"""
import csv
import math
import os
import platform
from dataclasses import dataclass, field
from os import path as osp
from typing import Optional

import numpy as np
import torch
from basicsr.metrics import calculate_metric
from PIL import Image
from tqdm import tqdm

from sfmnet_plugin.archs.pil_resize import pil_bicubic_resize
from sfmnet_plugin.data.image_io import ImageDecodeError, decode_rgb, list_image_files
from sfmnet_plugin.data.lmdb_io import read_meta_info
from sfmnet_plugin.data.paired_face_dataset import PairedFaceDataset
from sfmnet_plugin.inference import FaceRestorer, InferenceError
from sfmnet_plugin.metrics.face_psnr_ssim_metric import PROTOCOLS
from sfmnet_plugin.profiling import count_macs_per_image, count_parameters, time_runs
from sfmnet_plugin.reports import replace_atomically, write_contact_sheet

OUTPUT_FILES = ('table.md', 'table.csv', 'per_image.csv', 'contact_sheet.png', 'quality_vs_cost.png')
_SHOWN = 5


class BenchmarkError(Exception):
    """A user mistake or missing input that stops the benchmark; the message is meant for the user."""


# ---------------------------------------------------------------------------------------------- metrics

@dataclass(frozen=True)
class Column:
    """One metric column: the registered metric and its options, which way is better, the table's format."""

    name: str
    title: str
    options: dict
    higher_is_better: bool
    digits: int


def metric_columns(metric, scale, lpips_weights=None, arcface_onnx=None):
    """The columns of a metric group name (``sfmnet``, ``sparnet``, ``dic``: PSNR and SSIM; the others: one)."""
    if metric in PROTOCOLS:
        crop = {'crop_border': scale} if metric == 'dic' else {}
        return [Column(f'psnr_{metric}', f'PSNR ({metric})', {'type': 'calculate_face_psnr', 'protocol': metric,
                                                             **crop}, True, 2),
                Column(f'ssim_{metric}', f'SSIM ({metric})', {'type': 'calculate_face_ssim', 'protocol': metric,
                                                             **crop}, True, 4)]
    if metric == 'lpips':
        return [Column('lpips', 'LPIPS', {'type': 'calculate_lpips', 'net': 'alex', 'protocol': 'standard',
                                          'weights_path': lpips_weights}, False, 4)]
    if metric == 'identity':
        return [Column('identity', 'ID sim. (dlib)', {'type': 'calculate_identity_similarity', 'backend': 'dlib'},
                       True, 4)]
    if metric == 'identity_arcface':
        if not arcface_onnx:
            raise BenchmarkError('metric identity_arcface needs the ArcFace ONNX file (arcface_onnx / --arcface-onnx).')
        return [Column('identity_arcface', 'ID sim. (ArcFace)', {'type': 'calculate_identity_similarity',
                                                                 'backend': 'onnx', 'onnx_path': arcface_onnx},
                       True, 4)]
    if metric == 'nme':
        return [Column('nme', 'NME', {'type': 'calculate_landmark_nme'}, False, 4)]
    raise BenchmarkError(f'unknown metric {metric!r}; choose from {ALL_METRICS}.')


ALL_METRICS = ('sfmnet', 'sparnet', 'dic', 'lpips', 'identity', 'nme', 'identity_arcface')
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
}


def check_metric_available(column):
    """None if the metric runs on a grey probe image, else why not (a missing weight file or extra), before any work."""
    probe = np.full((128, 128, 3), 128, np.uint8)
    try:
        calculate_metric({'img': probe, 'img2': probe}, column.options)
    except (ImportError, FileNotFoundError, ValueError) as error:
        return str(error)
    return None


def resolve_columns(metrics, scale, lpips_weights, arcface_onnx, notes):
    """Columns of ``metrics`` (None: :data:`DEFAULT_METRICS` that can run here; what cannot is noted in ``notes``).

    A metric named explicitly that cannot run is an error.
    """
    explicit = metrics is not None
    chosen = []
    for metric in dict.fromkeys(metrics if explicit else DEFAULT_METRICS):  # each once, in the given order
        columns = metric_columns(metric, scale, lpips_weights, arcface_onnx)
        if metric in PROTOCOLS:  # nothing to load: always available
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


# ---------------------------------------------------------------------------------------------- test set

@dataclass(frozen=True)
class TestSet:
    """HR faces (LMDB or folder) with stored LR (``lq``) or LR made on the fly by ``downsampler``."""

    __test__ = False  # not a pytest test class, whatever its name
    gt: str
    lq: Optional[str] = None
    scale: int = 8
    downsampler: str = 'pil_bicubic'
    name: Optional[str] = None

    @property
    def title(self):
        """``name``, or the HR path without a trailing ``.lmdb`` (e.g. ``datasets/CelebA/test/HR``)."""
        gt = osp.normpath(self.gt)
        return self.name or (gt[:-len('.lmdb')] if gt.endswith('.lmdb') else gt)

    def describe(self):
        lr = f'LR `{self.lq}`' if self.lq else f'LR made from the HR by {self.downsampler}'
        return f'HR `{self.gt}`, {lr}'

    def dataset(self):
        options = {'name': self.title, 'dataroot_gt': self.gt, 'scale': self.scale, 'phase': 'test',
                   'downsampler': self.downsampler}
        if self.lq:
            options['dataroot_lq'] = self.lq
        try:
            return PairedFaceDataset(options)
        except (OSError, ValueError, KeyError) as error:
            raise BenchmarkError(f'test set: {error}') from error


def hr_sizes(dataset):
    """Key -> (height, width) of every HR image, from LMDB meta_info or the image file headers."""
    if dataset.backend == 'lmdb':
        shapes = read_meta_info(dataset.gt_root)
        return {key: shapes[key][:2] for key in dataset.keys}
    sizes = {}
    for key in dataset.keys:
        try:
            with Image.open(dataset.gt_paths[key]) as image:
                sizes[key] = (image.height, image.width)
        except OSError as error:
            raise BenchmarkError(f'test set: cannot read {dataset.gt_paths[key]}: {error}') from error
    return sizes


def _tensor_to_rgb(tensor):
    """A 3 x H x W float tensor in [0, 1] (as the dataset and the networks give them) as H x W x 3 uint8 RGB."""
    return (tensor.clamp(0, 1) * 255.).round().to(torch.uint8).permute(1, 2, 0).numpy()


# ---------------------------------------------------------------------------------------------- methods

@dataclass
class Cost:
    """What a method costs; None where unknown (folders) or not applicable (bicubic)."""

    parameters: Optional[int] = None
    macs: Optional[float] = None
    latency_ms: Optional[float] = None


@dataclass(frozen=True)
class Bicubic:
    """The bicubic baseline: the LR face upsampled like PIL's bicubic (``pil_bicubic_resize``), as validation does.

    It is the float version of PIL's filter, the same the networks use inside, rounded once at the end; PIL's own
    8-bit resize differs from it by at most one grey level.
    """

    name: str = 'Bicubic'
    kind = 'bicubic'

    def describe(self):
        return 'the LR upsampled with PIL-exact bicubic (`pil_bicubic_resize`)'

    def prepare(self, test_set, sizes, device, latency_repeats):
        return self, Cost(parameters=0)

    def super_resolve(self, key, lr_tensor, hr_size):
        return _tensor_to_rgb(pil_bicubic_resize(lr_tensor[None], hr_size)[0])


@dataclass(frozen=True)
class Network:
    """A registered network with its checkpoint; ``option_file`` (its ``network_g``) or ``network`` options.

    Without either, the network is SFMNet at the test set's scale.
    """

    name: str
    checkpoint: str
    option_file: Optional[str] = None
    network: Optional[dict] = None
    param_key: Optional[str] = None
    kind = 'network'

    def describe(self):
        if self.option_file:
            network = f'network_g of `{self.option_file}`'
        else:
            network = f'network_g {self.network}' if self.network else 'SFMNet at the test set\'s scale'
        return f'checkpoint `{self.checkpoint}`, {network}'

    def prepare(self, test_set, sizes, device, latency_repeats):
        try:
            if self.option_file:
                restorer = FaceRestorer.from_option_file(self.checkpoint, self.option_file, param_key=self.param_key,
                                                         device=device)
            else:
                scale = None if self.network else test_set.scale
                restorer = FaceRestorer(self.checkpoint, self.network, scale=scale, param_key=self.param_key,
                                        device=device)
        except InferenceError as error:
            raise BenchmarkError(f'method {self.name}: {error}') from error
        if restorer.scale not in (None, test_set.scale):
            raise BenchmarkError(f'method {self.name}: the network is x{restorer.scale} but the test set is '
                                 f'x{test_set.scale}.')
        height, width = next(iter(sizes.values()))
        probe = torch.rand(1, 3, height // test_set.scale, width // test_set.scale, device=restorer.device)
        try:
            cost = Cost(parameters=count_parameters(restorer.net), macs=count_macs_per_image(restorer.net, probe))
        except (RuntimeError, ValueError, AssertionError) as error:
            raise _cannot_take(self.name, restorer, probe, error) from error
        if latency_repeats:
            synchronize = torch.cuda.synchronize if restorer.device.type == 'cuda' else (lambda: None)
            median, _ = time_runs(lambda: restorer.restore(probe), warmup=2, repeats=latency_repeats,
                                  synchronize=synchronize)
            cost.latency_ms = median * 1000
        return _NetworkRunner(self.name, restorer), cost


def _cannot_take(name, restorer, lr, error, key=None):
    height, width = lr.shape[-2:]
    image = f' ({key})' if key else ''
    return BenchmarkError(f"method {name}: network_g type {restorer.options['type']!r} cannot take a {width}x{height} "
                          f'LR input{image}: {error}')


@dataclass(frozen=True)
class _NetworkRunner:
    name: str
    restorer: FaceRestorer

    def super_resolve(self, key, lr_tensor, hr_size):
        try:
            sr = _tensor_to_rgb(self.restorer.restore(lr_tensor[None])[0])
        except (RuntimeError, ValueError, AssertionError) as error:
            raise _cannot_take(self.name, self.restorer, lr_tensor[None], error, key) from error
        if sr.shape[:2] != tuple(hr_size):
            raise BenchmarkError(f'method {self.name}: SR of {key} is {sr.shape[1]}x{sr.shape[0]} but its HR is '
                                 f'{hr_size[1]}x{hr_size[0]}.')
        return sr


@dataclass(frozen=True)
class SrFolder:
    """SR images that other code wrote, one per test image, named like the test set's keys (any image format).

    ``parameters`` and ``macs``, when known (e.g. from the method's paper), go into the table and the plot.
    """

    name: str
    folder: str
    parameters: Optional[int] = None
    macs: Optional[float] = None
    kind = 'folder'

    def describe(self):
        return f'SR images from `{self.folder}`'

    def prepare(self, test_set, sizes, device, latency_repeats):
        try:
            files = list_image_files(self.folder)
        except (FileNotFoundError, ValueError) as error:
            raise BenchmarkError(f'method {self.name}: {error}') from error
        missing = sorted(set(sizes) - set(files))
        if missing:
            raise BenchmarkError(f'method {self.name}: {len(missing)} of the {len(sizes)} test images have no SR '
                                 f'image in {self.folder}: {_examples(missing)} (SR images are paired with the '
                                 'HR images by file name, without extension).')
        for key, (height, width) in sizes.items():
            try:
                with Image.open(files[key]) as image:
                    size = (image.height, image.width)
            except OSError as error:
                raise BenchmarkError(f'method {self.name}: cannot read {files[key]}: {error}') from error
            if size != (height, width):
                raise BenchmarkError(f'method {self.name}: {files[key]} is {size[1]}x{size[0]} but the HR image '
                                     f'{key} is {width}x{height}.')
        return _FolderRunner(self.name, {key: files[key] for key in sizes}), Cost(self.parameters, self.macs)


@dataclass(frozen=True)
class _FolderRunner:
    name: str
    files: dict

    def super_resolve(self, key, lr_tensor, hr_size):
        path = self.files[key]
        try:
            with open(path, 'rb') as f:
                return decode_rgb(f.read(), path)[0]
        except (OSError, ImageDecodeError) as error:
            raise BenchmarkError(f'method {self.name}: {error}') from error


def _examples(names):
    return ', '.join(names[:_SHOWN]) + (f' and {len(names) - _SHOWN} more' if len(names) > _SHOWN else '')


# ---------------------------------------------------------------------------------------------- the run

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


def _check_methods(methods):
    if not methods:
        raise BenchmarkError('no method to compare: give at least one network, bicubic or SR folder.')
    names = [method.name for method in methods]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise BenchmarkError(f'method names must be unique; repeated: {", ".join(repeated)}.')


def _check_output_folder(out_dir, overwrite):
    if osp.exists(out_dir) and not osp.isdir(out_dir):
        raise BenchmarkError(f'output folder {out_dir} is a file; choose a folder.')
    existing = [name for name in OUTPUT_FILES if osp.exists(osp.join(out_dir, name))]
    if existing and not overwrite:
        raise BenchmarkError(f'{out_dir} already holds benchmark results ({", ".join(existing)}); choose another '
                             'output folder or allow overwriting them (--overwrite).')


def run_benchmark(test_set, methods, out_dir, metrics=None, lpips_weights=None, arcface_onnx=None, device='auto',
                  latency_repeats=5, sheet_images=4, overwrite=False, progress=True):
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
    """
    _check_methods(methods)
    _check_output_folder(out_dir, overwrite)
    notes = []
    columns, metric_groups = resolve_columns(None if metrics is None else list(metrics), test_set.scale,
                                             lpips_weights, arcface_onnx, notes)
    dataset = test_set.dataset()
    sizes = hr_sizes(dataset)
    runners, costs = {}, {}
    for method in methods:
        runners[method.name], costs[method.name] = method.prepare(test_set, sizes, device, latency_repeats)
    load_average = os.getloadavg()[0]  # right after the latency measurements: how busy the machine was

    per_image, panels = _score_images(dataset, sizes, methods, runners, columns,
                                      contact_sheet_keys(dataset.keys, sheet_images),
                                      progress_title=f'benchmark {test_set.title}' if progress else None)
    means = {method.name: {column.name: float(np.mean([row[column.name] for row in per_image
                                                       if row['method'] == method.name]))
                           for column in columns} for method in methods}
    notes += [METRIC_NOTES[group] for group in metric_groups]
    notes.append(_cost_note(device, latency_repeats, load_average))
    sources = {'test set': test_set.describe(), **{method.name: method.describe() for method in methods}}
    result = BenchmarkResult(test_set.title, test_set.scale, [m.name for m in methods],
                             {m.name: m.kind for m in methods}, columns, per_image, means, costs, sources, notes)
    write_outputs(result, out_dir, panels)
    return result


def contact_sheet_keys(keys, count):
    """``count`` keys spread evenly over ``keys`` (first and last included), in order."""
    if not count:
        return []
    indices = np.linspace(0, len(keys) - 1, min(count, len(keys))).round().astype(int)
    return [keys[i] for i in sorted(set(indices))]


def _bgr(rgb_or_tensor):
    rgb = _tensor_to_rgb(rgb_or_tensor) if isinstance(rgb_or_tensor, torch.Tensor) else rgb_or_tensor
    return np.ascontiguousarray(rgb[..., ::-1])


def _score_images(dataset, sizes, methods, runners, columns, sheet_keys, progress_title):
    """Per-image rows (one per image and method) and the contact-sheet panels of ``sheet_keys``."""
    per_image, panels = [], []
    with tqdm(total=len(dataset.keys) * len(methods), unit='img', desc=progress_title,
              disable=None if progress_title else True) as bar:
        for index, key in enumerate(dataset.keys):
            try:
                sample = dataset[index]
            except (OSError, ValueError, KeyError) as error:
                raise BenchmarkError(f'test set: {error}') from error
            hr_bgr = _bgr(sample['gt'])
            sr_images = []
            for method in methods:
                sr_bgr = _bgr(runners[method.name].super_resolve(key, sample['lq'], sizes[key]))
                row = {'image': key, 'method': method.name}
                for column in columns:  # BasicSR's metric call, as in validation: uint8 BGR, SR then HR
                    row[column.name] = float(calculate_metric({'img': sr_bgr, 'img2': hr_bgr}, column.options))
                per_image.append(row)
                sr_images.append(sr_bgr)
                bar.update()
            if key in sheet_keys:
                panels.append((key, [_bgr(sample['lq']), *sr_images, hr_bgr]))
    return per_image, panels


def _cost_note(device, latency_repeats, load_average):
    macs = 'MACs: Conv2d + Linear multiply-accumulates per image.'
    if not latency_repeats:
        return f'{macs} Latency not measured.'
    where = torch.cuda.get_device_name() if device != 'cpu' and torch.cuda.is_available() else \
        f'CPU ({platform.processor() or platform.machine()}, torch threads: {torch.get_num_threads()})'
    return (f'{macs} Latency: median of {latency_repeats} batch-1 forward passes on {where}; load average '
            f'{load_average:.1f} when measured.')


# ---------------------------------------------------------------------------------------------- outputs

def write_outputs(result, out_dir, panels):
    os.makedirs(out_dir, exist_ok=True)
    result.files = {name: osp.join(out_dir, name) for name in OUTPUT_FILES}
    replace_atomically(result.files['table.md'], lambda target: _write_text(target, markdown_table(result)))
    replace_atomically(result.files['table.csv'], lambda target: _write_csv(target, *table_rows(result)))
    per_image_header = ['image', 'method', *[column.name for column in result.columns]]
    replace_atomically(result.files['per_image.csv'],
                       lambda target: _write_csv(target, per_image_header, result.per_image))
    if panels:
        write_contact_sheet(result.files['contact_sheet.png'], panels, columns=('LR', *result.methods, 'HR'))
    else:
        del result.files['contact_sheet.png']
    plot_quality_vs_cost(result, result.files['quality_vs_cost.png'])


def _write_text(target, text):
    with open(target, 'w', encoding='utf-8') as f:
        f.write(text)


def _write_csv(target, header, rows):
    with open(target, 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: ('' if value is None else repr(value) if isinstance(value, float) else value)
                             for key, value in row.items()})


def table_rows(result):
    """Header and rows of ``table.csv``: the means at full precision, then the costs."""
    header = ['method', 'kind', 'images', *[column.name for column in result.columns],
              'parameters', 'macs', 'latency_ms']
    images = len(result.per_image) // len(result.methods)
    rows = [{'method': name, 'kind': result.kinds[name], 'images': images, **result.means[name],
             'parameters': result.costs[name].parameters, 'macs': result.costs[name].macs,
             'latency_ms': result.costs[name].latency_ms} for name in result.methods]
    return header, rows


def _best(values, higher_is_better):
    finite = [v for v in values if not math.isnan(v)]
    return (max if higher_is_better else min)(finite) if finite else None


def _format_count(value, unit=''):
    if value is None:
        return '–'
    for threshold, suffix in ((1e9, 'G'), (1e6, 'M'), (1e3, 'K')):
        if value >= threshold:
            return f'{value / threshold:.2f} {suffix}{unit}'
    return f'{value:g}{unit}' if value else '0'


def markdown_table(result):
    """The paper-style table: one row per method, best value of each metric in bold, then the costs."""
    images = len(result.per_image) // len(result.methods)
    header = ['Method', *[f'{column.title} {"↑" if column.higher_is_better else "↓"}' for column in result.columns],
              'Params', 'MACs', 'Latency (ms)']
    lines = [f'# {result.test_set}, x{result.scale}: {images} images', '',
             '| ' + ' | '.join(header) + ' |', '|---|' + '---:|' * (len(header) - 1)]
    best = {column.name: _best([result.means[name][column.name] for name in result.methods], column.higher_is_better)
            for column in result.columns}
    for name in result.methods:
        cells = [name]
        for column in result.columns:
            value = result.means[name][column.name]
            text = f'{value:.{column.digits}f}'
            cells.append(f'**{text}**' if value == best[column.name] and len(result.methods) > 1 else text)
        cost = result.costs[name]
        cells += [_format_count(cost.parameters), _format_count(cost.macs),
                  '–' if cost.latency_ms is None else f'{cost.latency_ms:.1f}']
        lines.append('| ' + ' | '.join(cells) + ' |')
    lines += [''] + [f'* {name}: {source}' for name, source in result.sources.items()]
    lines += [''] + [f'* {note}' for note in result.notes]
    return '\n'.join(lines) + '\n'


def plot_metric_column(result):
    """The column the plot shows: the first PSNR column (sfmnet, sparnet, dic order), else the first column."""
    names = [column.name for column in result.columns]
    for name in ('psnr_sfmnet', 'psnr_sparnet', 'psnr_dic'):
        if name in names:
            return result.columns[names.index(name)]
    return result.columns[0]


def plot_quality_vs_cost(result, path):
    """Quality against parameters: a point per method with a known parameter count, a dashed line for the others.

    Returns the legend labels (one per method, in table order).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    column = plot_metric_column(result)
    figure = Figure(figsize=(6.4, 4.4), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    counts = [result.costs[name].parameters for name in result.methods if result.costs[name].parameters]
    markers = 'osD^vP*Xh<>'
    for index, name in enumerate(result.methods):
        value, parameters = result.means[name][column.name], result.costs[name].parameters
        if parameters:
            axes.plot([parameters / 1e6], [value], markers[index % len(markers)], color=f'C{index % 10}', markersize=8,
                      label=name)
            axes.annotate(name, (parameters / 1e6, value), textcoords='offset points', xytext=(6, 4), fontsize=8)
        else:
            what = 'no parameters' if parameters == 0 else 'cost unknown'
            axes.axhline(value, linestyle='--', linewidth=1, color=f'C{index % 10}', label=f'{name} ({what})')
    if counts and max(counts) / min(counts) > 20:
        axes.set_xscale('log')
    elif counts:
        axes.set_xlim(0, max(counts) / 1e6 * 1.25)  # a linear axis from zero parameters
    axes.set_xlabel('parameters (M)')
    axes.set_ylabel(f'{column.title} {"↑" if column.higher_is_better else "↓"}')
    axes.set_title(f'{result.test_set}, x{result.scale}: quality vs parameters')
    axes.grid(True, alpha=0.3)
    legend = axes.legend(fontsize=8, loc='best')
    figure.tight_layout()
    replace_atomically(path, lambda target: figure.savefig(target, format='png'))
    return [text.get_text() for text in legend.get_texts()]
