"""The inference API: one class that loads any face network of the family and restores LR faces.

``FaceRestorer`` is what ``sfmnet-infer``, the whole-photo restorer, the benchmark and other people's code
share (in the spirit of GFPGAN's ``GFPGANer``)::

    import sfmnet_plugin
    from sfmnet_plugin.inference import FaceRestorer

    restorer = FaceRestorer('experiments/train_SFMNet_x8/models/net_g_latest.pth',
                            network={'type': 'SFMNet', 'upscale': 8})
    sr = restorer.restore(lr)                 # B x 3 x h x w tensor in [0, 1] -> B x 3 x H x W in [0, 1]
    sr_rgb = restorer.restore_image(lr_rgb)   # h x w x 3 uint8 RGB array -> H x W x 3 uint8 RGB array
    result = restorer.restore_photo(photo)    # every face of a whole photo, aligned, restored, pasted back

The network is any architecture in BasicSR's registry, given as ``network_g`` options (a dict) or a BasicSR option
file (``FaceRestorer.from_option_file``); by default the checkpoint names it: the ``network_g`` a checkpoint written
by the plugin carries, or the network an official checkpoint is recognised as. The checkpoint is a BasicSR file,
``.pth`` or ``.safetensors`` (``params_ema`` preferred when present), a plain state dict, or an official checkpoint,
converted on the fly (:mod:`sfmnet_plugin.checkpoints`).
"""

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from basicsr.archs import build_network
from numpy.typing import ArrayLike
from PIL import Image

from sfmnet_plugin.checkpoints import (
    CheckpointConversionError,
    convert_official_checkpoint,
    recognise_official_checkpoint,
    strip_module_prefix,
    unwrap_checkpoint,
)
from sfmnet_plugin.checkpoints.io import load_checkpoint_file, stored_network_options
from sfmnet_plugin.checkpoints.mismatch import weights_mismatch
from sfmnet_plugin.inference.network_options import (
    SCALE_OPTION_NAMES,
    InferenceError,
    declared_scale,
    network_options_from_file,
    resolve_network_options,
)
from sfmnet_plugin.utils.profiling import count_parameters
from sfmnet_plugin.utils.safe_loading import UnsafeOrInvalidFileError

if TYPE_CHECKING:
    from sfmnet_plugin.inference.whole_photo import PhotoResult

BACKENDS = ('torch', 'onnxruntime')
PRECISIONS = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}  # autocast dtype of each


def load_state_dict(path, param_key=None, keep_unused_attention=True) -> dict:
    """The state dict in ``path``; official checkpoints are converted to the plugin's names on the fly."""
    return load_checkpoint(path, param_key, keep_unused_attention)[0]


def load_checkpoint(path, param_key=None, keep_unused_attention=True):
    """``(state dict, OfficialNetwork or None, stored network_g or None)``: the state dict in ``path`` (``.pth`` or
    ``.safetensors``), converted if it has an official layout (SFMNet, SPARNet family; see
    :mod:`sfmnet_plugin.checkpoints`), the network recognised, and the ``network_g`` options saved with it."""
    try:
        checkpoint = load_checkpoint_file(path)  # never runs code; one line naming the file when it is refused
    except FileNotFoundError as error:
        raise InferenceError(f'checkpoint not found: {path}') from error
    except UnsafeOrInvalidFileError as error:
        raise InferenceError(str(error)) from error
    if param_key is None:
        state_dict = unwrap_checkpoint(checkpoint)
    elif isinstance(checkpoint, dict) and isinstance(checkpoint.get(param_key), dict):
        state_dict = checkpoint[param_key]
    else:
        entries = sorted(checkpoint) if isinstance(checkpoint, dict) else []
        raise InferenceError(f'checkpoint {path} has no {param_key!r} entry (top-level keys: {entries[:10]}).')
    if not isinstance(state_dict, dict) or not all(isinstance(t, torch.Tensor) for t in state_dict.values()):
        raise InferenceError(f'checkpoint {path} holds no state dict (a mapping of parameter names to tensors).')
    state_dict = strip_module_prefix(state_dict)
    official = recognise_official_checkpoint(state_dict, keep_unused_attention=keep_unused_attention)
    if official is not None:
        try:
            state_dict, official = convert_official_checkpoint(state_dict, keep_unused_attention=keep_unused_attention)
        except CheckpointConversionError as error:
            raise InferenceError(f'official checkpoint {path} could not be converted: {error}') from error
    return state_dict, official, stored_network_options(checkpoint)


def load_weights(model, state_dict, path, options):
    """Load strictly; on a mismatch raise an error naming a few offending keys (for SFMNet: the differing options)."""
    lines = weights_mismatch(model.state_dict(), state_dict)
    if not lines:
        model.load_state_dict(state_dict, strict=True)
        return
    raise InferenceError(f'checkpoint {path} does not fit network_g {options}:\n  ' + '\n  '.join(lines)
                         + '\nSet the matching network_g options with --opt or --arch-json.')


def choose_device(name='auto'):
    """``auto``: CUDA when available, else the CPU; ``cuda`` when CUDA is missing is an error."""
    if name in (None, 'auto'):
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if name == 'cuda' and not torch.cuda.is_available():
        raise InferenceError('--device cuda was requested but CUDA is not available.')
    return torch.device(name)


# ---------------------------------------------------------------------------------------------- the restorer

class FaceRestorer:
    """A face SR network with its weights, in eval mode on ``device``, restoring LR faces.

    Args:
        checkpoint: BasicSR checkpoint (``.pth`` or ``.safetensors``), plain state dict or official checkpoint
            (converted on the fly).
        network: ``network_g`` options; they win over the checkpoint's (default: the ``network_g`` saved with the
            checkpoint, else the network an official checkpoint is recognised as, e.g. SPARNet x8; a checkpoint
            with neither is an error that says so).
        scale: sets the network's ``upscale`` (or ``scale``) option when given.
        param_key: state dict inside a BasicSR checkpoint (default: ``params_ema`` when present).
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or a ``torch.device``.
        backend: ``torch`` (default) or ``onnxruntime``: then ``checkpoint`` is an ``.onnx`` file written by
            ``sfmnet-export`` (network options, LR size and weights inside it) and ``network``/``scale`` are unused.
        precision: ``fp32`` (default), ``bf16`` or ``fp16``: autocast to that dtype (networks keep their FFTs in
            float32). bf16 pays off on CPUs with AVX512-BF16/AMX; on GPUs, face-sized inputs are launch-bound and bf16
            only adds cast kernels (docs/speed.md); fp16 is meant for GPUs.
        channels_last: keep the network's weights in channels_last (NHWC) layout, which oneDNN's and cuDNN's
            reduced-precision convolutions prefer. None (default): on for bf16/fp16, off for fp32 (there it gains
            only a few percent and the fp32 path stays the reference computation).
        compile: ``torch.compile`` the network (inductor). The first batch of each new shape pays the compilation
            once; worth it for many faces (docs/speed.md).
    """

    def __init__(self, checkpoint: str, network: dict | None = None, scale: int | None = None,
                 param_key: str | None = None, device: str | torch.device = 'auto', precision: str = 'fp32',
                 backend: str = 'torch', channels_last: bool | None = None, compile: bool = False) -> None:
        if precision not in PRECISIONS:
            raise InferenceError(f'precision must be one of {sorted(PRECISIONS)}, got {precision!r}.')
        if backend not in BACKENDS:
            raise InferenceError(f'backend must be one of {BACKENDS}, got {backend!r}.')
        if backend == 'onnxruntime' and (compile or channels_last):
            raise InferenceError('compile and channels_last apply to the torch backend, not onnxruntime.')
        self.precision, self.backend, self.checkpoint = precision, backend, checkpoint
        self.device = device if isinstance(device, torch.device) else choose_device(device)
        if backend == 'onnxruntime':
            self._load_onnx(checkpoint, precision)
            return
        keep_unused_attention = (network or {}).get('keep_unused_attention', True)
        state_dict, self.official_network, stored = load_checkpoint(checkpoint, param_key, keep_unused_attention)
        if network is None:  # the checkpoint names its network: options saved with it, or an official layout
            network = stored or (self.official_network and self.official_network.network_options)
        if network is None:
            raise InferenceError(f'checkpoint {checkpoint} carries no network options (no network_g saved with it) '
                                 'and is not an official checkpoint of a known network: give its network_g '
                                 '(sfmnet-infer: --opt FILE or --arch-json).')
        self.options = resolve_network_options(network, scale)
        try:
            self.net = build_network(dict(self.options))
        except (TypeError, ValueError) as error:
            raise InferenceError(f'cannot build network_g {self.options}: {error}') from error
        load_weights(self.net, state_dict, checkpoint, self.options)
        self.net.eval().to(self.device)
        if channels_last is None:
            channels_last = precision != 'fp32'
        if channels_last:
            self.net.to(memory_format=torch.channels_last)
        # ``net`` stays the plain module (hooks, export, parameter counts); ``run`` is what restore() calls.
        self.run = torch.compile(self.net) if compile else self.net

    def _load_onnx(self, path, precision):
        """``backend='onnxruntime'``: ``path`` is a file written by ``sfmnet-export``; the options come from it."""
        from sfmnet_plugin.inference.onnx import ExportError, OnnxNetwork

        if precision != 'fp32':
            raise InferenceError('the onnxruntime backend runs the exported float32 graph: use precision fp32.')
        if not str(path).endswith('.onnx'):
            raise InferenceError(f'backend onnxruntime needs an .onnx file written by sfmnet-export, got {path}.')
        try:
            self.net = OnnxNetwork(path, device=self.device)
        except ExportError as error:
            raise InferenceError(str(error)) from error
        self.run = self.net
        self.options = dict(self.net.metadata.get('network_g') or {'type': 'unknown'})

    @classmethod
    def from_option_file(cls, checkpoint: str, option_path: str, **kwargs: Any) -> 'FaceRestorer':
        """The network of ``network_g`` in a BasicSR option file."""
        return cls(checkpoint, network=network_options_from_file(option_path), **kwargs)

    @property
    def scale(self) -> int | None:
        """The factor the network's options state (None when they state none)."""
        if self.backend == 'onnxruntime':
            return next((self.options[name] for name in SCALE_OPTION_NAMES if name in self.options), None)
        return declared_scale(self.options)

    @property
    def num_parameters(self) -> int | None:
        """The network's parameters (what an ONNX file records; None if it records none)."""
        if self.backend == 'onnxruntime':
            return self.net.metadata.get('num_parameters')
        return count_parameters(self.net)

    @torch.inference_mode()
    def restore(self, lr: torch.Tensor) -> torch.Tensor:
        """SR of a ``B x 3 x h x w`` batch in [0, 1] (any device), returned on the CPU, not clamped.

        Networks that return several outputs give the first (BasicSR's convention).
        """
        dtype = PRECISIONS[self.precision]
        with torch.autocast(device_type=self.device.type, dtype=dtype, enabled=dtype is not None):
            sr = self.run(lr.to(self.device))
        if isinstance(sr, (tuple, list)):
            sr = sr[0]
        if not isinstance(sr, torch.Tensor) or sr.dim() != 4 or sr.shape[1] != 3:
            raise InferenceError(f"network_g type {self.options['type']!r} did not return a B x 3 x H x W image.")
        return sr.float().cpu()

    def restore_images(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """SR of same-sized ``h x w x 3`` uint8 RGB arrays, as uint8 RGB arrays (clamped and rounded)."""
        lr = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255.)
        sr = self.restore(lr)
        return list((sr.clamp(0, 1) * 255.).round().to(torch.uint8).permute(0, 2, 3, 1).numpy())

    def restore_image(self, image: ArrayLike) -> np.ndarray:
        """SR of one ``h x w x 3`` uint8 RGB array."""
        return self.restore_images([np.asarray(image)])[0]

    def restore_photo(self, photo: Image.Image | np.ndarray, detector: Callable | None = None,
                      **options: Any) -> 'PhotoResult':
        """Restore every face of a whole photo (RGB PIL image or uint8 array): a ``PhotoResult``.

        Faces are detected (MTCNN unless ``detector`` is given), aligned to the FFHQ template, restored and pasted
        back; ``options`` are those of :class:`sfmnet_plugin.inference.whole_photo.WholePhotoRestorer` (``upscale``,
        ``face_size``, ``min_score`` ...), which is also the class to keep for many photos.
        """
        from sfmnet_plugin.inference.whole_photo import WholePhotoRestorer

        return WholePhotoRestorer(self, detector=detector, **options).restore_photo(photo)
