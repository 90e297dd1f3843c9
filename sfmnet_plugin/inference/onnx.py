"""ONNX export of any registered face network, and ONNX Runtime inference behind the ``FaceRestorer`` interface.

    from sfmnet_plugin.inference.onnx import export_onnx
    export_onnx(restorer.net, 'sfmnet_x8.onnx', lr_size=(16, 16), network_options=restorer.options)

The graph takes a ``B x 3 x h x w`` LR batch in [0, 1] (any batch size; the LR size is fixed at export, because the
FFT networks hold DFT matrices of their feature sizes) and returns the first output of the network (the SR image),
unclamped. Networks with FFT blocks are exported with their transforms as real DFT matmuls (any module with a
``dft_by_matmul`` attribute, see :mod:`sfmnet_plugin.archs.spectral`): ONNX has no complex tensors, and the exporter's
DFT translation does not reproduce ``rfft2``/``irfft2`` (measured: outputs 2e-2 away). The file carries the network
options, the LR size, the parameter count and the exporter as metadata, which :class:`OnnxNetwork` reads back.

Every registered face network is exported by the TorchScript-based exporter (tracing: seconds), which needs a graph
whose shapes it can follow: a convolution kernel of known shape (SFMNet's folded down-sampling kernel is built by
concatenation, not ``F.pad``) and no reshape whose batch its shape inference loses (the 8-bit input step gathers
tap by tap, not through ``unflatten``). The dynamo exporter (minutes) remains the fallback for a network tracing
cannot export, or exports with a fixed batch.
"""
import json
import time
import warnings
from contextlib import contextmanager
from os import path as osp

import numpy as np
import torch
from torch import nn

from sfmnet_plugin.utils.atomic import atomic_write
from sfmnet_plugin.utils.nonfinite import first_nonfinite_onnx_weight
from sfmnet_plugin.utils.profiling import count_parameters

METADATA_KEY = 'sfmnet_plugin'
DEFAULT_OPSET = 20


class ExportError(Exception):
    """A problem with an export or an ONNX file; its message is one line meant for the user."""


def _require(module_name):
    try:
        return __import__(module_name)
    except ImportError as error:
        raise ExportError(f'{module_name} is not installed: pip install "sfmnet-plugin[onnx]" '
                          '(or pip install onnx onnxruntime onnxscript).') from error


class _FirstOutput(nn.Module):
    """The network's SR image only (BasicSR convention: the first output when there are several)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, lr):
        out = self.net(lr)
        return out[0] if isinstance(out, (tuple, list)) else out


@contextmanager
def dft_by_matmul(net):
    """Switch every FFT block of ``net`` to real DFT matmuls for the duration of the block."""
    blocks = [module for module in net.modules() if hasattr(module, 'dft_by_matmul')]
    saved = [block.dft_by_matmul for block in blocks]
    for block in blocks:
        block.dft_by_matmul = True
    try:
        yield net
    finally:
        for block, value in zip(blocks, saved):
            block.dft_by_matmul = value


def _traced_graph_runs_any_batch(temporary, example):
    """Whether the traced graph at ``temporary`` runs a batch other than the traced one. Tracing records a Python int
    taken from a shape (e.g. ``b, c, h, w = x.shape`` fed to a reshape) as a constant, and the exporter's shape
    inference can turn a shape it lost track of into the traced one, so a graph can come out fixed to the example's
    batch; ONNX Runtime then fails (or broadcasts) on another batch. Without onnxruntime it cannot be checked."""
    try:
        import onnxruntime
    except ImportError:
        return True
    other = torch.rand(example.shape[0] + 1, *example.shape[1:]).numpy()
    options = onnxruntime.SessionOptions()
    # a graph fixed to one batch fails as it stands; the runtime's graph optimisations would only cost seconds
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        session = onnxruntime.InferenceSession(temporary, options, providers=['CPUExecutionProvider'])
        (sr,) = session.run(None, {'lr': other})
    except Exception:  # ONNX Runtime's own error types: a reshape of the wrong size, above all
        return False
    return sr.shape[0] == other.shape[0]


TORCHSCRIPT, DYNAMO = 'torchscript', 'dynamo'
EXPORTERS = ('auto', TORCHSCRIPT, DYNAMO)


def _why_tracing_fails(net, example, temporary, common):
    """Export ``net`` into ``temporary`` by tracing; None when the graph is good, else why not (one line)."""
    try:
        with warnings.catch_warnings():  # tracing warns about every Python int taken from a shape: checked below
            warnings.simplefilter('ignore', torch.jit.TracerWarning)
            torch.onnx.export(_FirstOutput(net).eval(), (example,), temporary, dynamo=False,
                              dynamic_axes={'lr': {0: 'batch'}, 'sr': {0: 'batch'}}, **common)
    except OSError:  # writing the file failed (a full or read-only disk): no other exporter would do better
        raise
    except Exception as error:  # the TorchScript exporter's own error types vary with the operator it lacks
        return f'the TorchScript exporter failed ({type(error).__name__}: {str(error).splitlines()[0][:200]})'
    if not _traced_graph_runs_any_batch(temporary, example):
        return 'the traced graph is fixed to one batch size (a shape taken as a constant)'
    return None


def _export_graph(net, example, temporary, opset, progress, exporter):
    """The graph of ``net`` into ``temporary``; returns the exporter that wrote it: :data:`TORCHSCRIPT` (tracing,
    seconds) or :data:`DYNAMO` (``torch.export`` and onnxscript, minutes on a CPU). ``exporter='auto'`` traces and
    falls back to dynamo for a network that tracing cannot export or exports with a fixed batch (no registered face
    network needs it); a named exporter is used as such (an ExportError when tracing fails)."""
    common = dict(opset_version=opset, input_names=['lr'], output_names=['sr'], verbose=False)
    if exporter != DYNAMO:
        why_not = _why_tracing_fails(net, example, temporary, common)
        if why_not is None:
            return TORCHSCRIPT
        if exporter == TORCHSCRIPT:
            raise ExportError(f'cannot export {type(net).__name__} with the TorchScript exporter: {why_not}.')
        progress(f'{why_not}; exporting with torch.export (dynamo) instead, which takes minutes')
    # batch 2: torch.export specialises a dimension of size 1, and the batch must stay dynamic
    torch.onnx.export(_FirstOutput(net).eval(), (example,), temporary, dynamo=True, external_data=False,
                      dynamic_shapes={'lr': {0: torch.export.Dim('batch', min=1, max=1024)}}, **common)
    return DYNAMO


def export_onnx(net, path, lr_size, network_options=None, opset=DEFAULT_OPSET, progress=None, exporter='auto'):
    """Write ``net`` (eval mode, float32, CPU) as an ONNX file at ``path``; returns ``path``.

    ``lr_size`` is ``(h, w)`` of the LR input; the batch dimension stays dynamic. The file is written to a
    temporary name next to ``path`` and renamed when complete, so an interrupted export leaves no partial file.
    ``progress`` (a callable taking one line) hears each step. ``exporter`` is one of :data:`EXPORTERS`: ``'auto'``
    (the TorchScript-based exporter, dynamo where tracing fails), ``'torchscript'`` or ``'dynamo'``; the file's
    metadata names the one that wrote the graph (``exporter``).
    """
    if exporter not in EXPORTERS:
        raise ExportError(f'exporter must be one of {EXPORTERS}, got {exporter!r}.')
    onnx = _require('onnx')
    progress = progress or (lambda message: None)
    height, width = lr_size
    net = net.eval().float().cpu()
    # batch 2: the batch must come out dynamic (torch.export specialises a dimension of size 1)
    example = torch.rand(2, net_input_channels(net), height, width)

    def write(temporary):
        how = 'torch.export (dynamo), which takes minutes' if exporter == DYNAMO else 'TorchScript-based exporter'
        progress(f'exporting {type(net).__name__} for {height}x{width} LR inputs ({how}) ...')
        started = time.perf_counter()
        with dft_by_matmul(net), torch.no_grad():
            used = _export_graph(net, example, temporary, opset, progress, exporter)
        progress(f'graph written by the {used} exporter in {time.perf_counter() - started:.1f} s; '
                 'checking the ONNX file ...')
        model = onnx.load(temporary)
        metadata = {'network_g': network_options or {'type': type(net).__name__}, 'lr_size': [height, width],
                    'num_parameters': count_parameters(net), 'exporter': used}
        entry = model.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(metadata)
        onnx.checker.check_model(model)
        onnx.save(model, temporary)

    atomic_write(path, write, make_folder=True)
    return path


def net_input_channels(net):
    """Input channels of the first convolution (3 for the face networks)."""
    first = next((m for m in net.modules() if isinstance(m, nn.Conv2d)), None)
    return first.in_channels if first is not None else 3


class OnnxNetwork:
    """An exported network run by ONNX Runtime, called like the torch network: ``B x 3 x h x w`` -> SR tensor.

    Args:
        path: ONNX file written by :func:`export_onnx`.
        threads: ONNX Runtime intra-op threads (default: its own choice).
        providers: execution providers (default: CUDA when ONNX Runtime has it and ``device`` is CUDA, else CPU).
    """

    def __init__(self, path, threads=None, device='cpu'):
        ort = _require('onnxruntime')
        if not osp.isfile(path):
            raise ExportError(f'ONNX file not found: {path}')
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        providers = ['CPUExecutionProvider']
        if torch.device(device).type == 'cuda' and 'CUDAExecutionProvider' in ort.get_available_providers():
            providers.insert(0, 'CUDAExecutionProvider')
        try:
            self.session = ort.InferenceSession(path, options, providers=providers)
        except Exception as error:  # onnxruntime raises its own exception types for a bad file
            raise ExportError(f'cannot load ONNX file {path}: {error}') from error
        _require('onnx')
        bad = first_nonfinite_onnx_weight(path)
        if bad is not None:
            raise ExportError(f'ONNX file {path}: refused, weight {bad} is not finite (NaN or inf): these are the '
                              'weights of a run that diverged; export a sound checkpoint again.')
        raw = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        self.metadata = json.loads(raw) if raw else {}
        self.input_name = self.session.get_inputs()[0].name
        self.lr_size = tuple(self.metadata.get('lr_size') or self.session.get_inputs()[0].shape[-2:])
        self.path = path

    def __call__(self, lr):
        if tuple(lr.shape[-2:]) != self.lr_size:
            raise ValueError(f'{self.path} was exported for {self.lr_size[0]}x{self.lr_size[1]} LR inputs, got '
                             f'{lr.shape[-2]}x{lr.shape[-1]}; export again with --lr-size.')
        inputs = np.ascontiguousarray(lr.detach().float().cpu().numpy())
        return torch.from_numpy(self.session.run(None, {self.input_name: inputs})[0])
