"""What the benchmark compares: a test set, and methods that give one SR image per test image."""
from dataclasses import dataclass
from os import path as osp
from typing import Protocol

import numpy as np
import torch
from PIL import Image

from sfmnet_plugin.archs.pil_resize import resize_as_8bit
from sfmnet_plugin.benchmark.errors import BenchmarkError
from sfmnet_plugin.data.image_io import ImageDecodeError, decode_rgb, list_image_files
from sfmnet_plugin.data.lmdb_reader import examples, read_meta_info
from sfmnet_plugin.data.paired_face_dataset import PairedFaceDataset
from sfmnet_plugin.inference import FaceRestorer, InferenceError
from sfmnet_plugin.utils.profiling import count_macs_per_image, count_parameters, time_runs


@dataclass(frozen=True)
class TestSet:
    """HR faces (LMDB or folder) with stored LR (``lq``) or LR made on the fly by ``downsampler``."""

    __test__ = False  # not a pytest test class, whatever its name
    gt: str
    lq: str | None = None
    scale: int = 8
    downsampler: str = 'pil_bicubic'
    name: str | None = None

    @property
    def title(self) -> str:
        """``name``, or the HR path without a trailing ``.lmdb`` (e.g. ``datasets/CelebA/test/HR``)."""
        gt = osp.normpath(self.gt)
        return self.name or (gt[:-len('.lmdb')] if gt.endswith('.lmdb') else gt)

    def describe(self) -> str:
        """The test set in words, for the table's notes."""
        lr = f'LR `{self.lq}`' if self.lq else f'LR made from the HR by {self.downsampler}'
        return f'HR `{self.gt}`, {lr}'

    def dataset(self) -> PairedFaceDataset:
        """The test images, through the training-time dataset (``phase: test``)."""
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


def tensor_to_rgb(tensor):
    """A 3 x H x W float tensor in [0, 1] (as the dataset and the networks give them) as H x W x 3 uint8 RGB."""
    return (tensor.clamp(0, 1) * 255.).round().to(torch.uint8).permute(1, 2, 0).numpy()


class Runner(Protocol):
    """What a method's ``prepare`` returns: the SR image of each test image."""

    @property
    def name(self) -> str: ...

    def super_resolve(self, key: str, lr_tensor: torch.Tensor, hr_size: tuple[int, int]) -> np.ndarray: ...


@dataclass
class Cost:
    """What a method costs; None where unknown (folders) or not applicable (bicubic)."""

    parameters: int | None = None
    macs: float | None = None
    latency_ms: float | None = None


@dataclass(frozen=True)
class Bicubic:
    """The bicubic baseline: the 8-bit LR face upsampled as ``PIL.Image.resize(size, BICUBIC)`` does, pixel for
    pixel (``resize_as_8bit``, the networks' own default input step and the official loaders' image).
    """

    name: str = 'Bicubic'
    kind = 'bicubic'

    def describe(self) -> str:
        """The method in words, for the table's notes."""
        return "the 8-bit LR upsampled with PIL's bicubic, pixel for pixel (`resize_as_8bit`)"

    def prepare(self, test_set: TestSet, sizes: dict[str, tuple[int, int]], device: str,
                latency_repeats: int) -> tuple['Bicubic', Cost]:
        """The runner of the method (itself) and its cost."""
        return self, Cost(parameters=0)

    def super_resolve(self, key: str, lr_tensor: torch.Tensor, hr_size: tuple[int, int]) -> np.ndarray:
        """The SR image (H x W x 3 uint8 RGB) of one test image."""
        return tensor_to_rgb(resize_as_8bit(lr_tensor[None], hr_size)[0])


@dataclass(frozen=True)
class Network:
    """A registered network with its checkpoint; ``option_file`` (its ``network_g``) or ``network`` options.

    Without either, the network is the one the checkpoint names (the ``network_g`` saved with it, or an official
    checkpoint's), at the test set's scale.
    """

    name: str
    checkpoint: str
    option_file: str | None = None
    network: dict | None = None
    param_key: str | None = None
    kind = 'network'

    def describe(self) -> str:
        """The method in words, for the table's notes."""
        if self.option_file:
            network = f'network_g of `{self.option_file}`'
        else:
            network = f'network_g {self.network}' if self.network else 'the network the checkpoint names'
        return f'checkpoint `{self.checkpoint}`, {network}'

    def prepare(self, test_set: TestSet, sizes: dict[str, tuple[int, int]], device: str,
                latency_repeats: int) -> tuple['_NetworkRunner', Cost]:
        """The network loaded on ``device``, and its cost (parameters, MACs, latency when ``latency_repeats``)."""
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
            sr = tensor_to_rgb(self.restorer.restore(lr_tensor[None])[0])
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
    parameters: int | None = None
    macs: float | None = None
    kind = 'folder'

    def describe(self) -> str:
        """The method in words, for the table's notes."""
        return f'SR images from `{self.folder}`'

    def prepare(self, test_set: TestSet, sizes: dict[str, tuple[int, int]], device: str,
                latency_repeats: int) -> tuple['_FolderRunner', Cost]:
        """The folder's images checked against the test set (one per test image, of its HR size)."""
        try:
            files = list_image_files(self.folder)
        except (FileNotFoundError, ValueError) as error:
            raise BenchmarkError(f'method {self.name}: {error}') from error
        missing = sorted(set(sizes) - set(files))
        if missing:
            raise BenchmarkError(f'method {self.name}: {len(missing)} of the {len(sizes)} test images have no SR '
                                 f'image in {self.folder}: {examples(missing)} (SR images are paired with the '
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
