"""BasicSR's ``PerceptualLoss`` with its VGG weights taken from a local file instead of a download."""
import contextlib

import torchvision
from basicsr.archs import vgg_arch
from basicsr.losses.basic_loss import PerceptualLoss
from basicsr.utils.registry import LOSS_REGISTRY

from sfmnet_plugin.utils.pretrained import PretrainedFile, resolve_pretrained_file, warn_random_weights


class _RandomInitTorchvisionVGG:
    """Stands in for ``torchvision.models.vgg`` in BasicSR: every ``vggXX(pretrained=...)`` builds random weights."""

    def __getattr__(self, vgg_type):
        build = getattr(torchvision.models.vgg, vgg_type)
        return lambda pretrained=False, **kwargs: build(weights=None, **kwargs)


@contextlib.contextmanager
def _basicsr_vgg_weights(weights_path):
    """While BasicSR builds a ``VGGFeatureExtractor``, load its weights from ``weights_path`` (None: random).

    ``VGGFeatureExtractor`` reads the module global ``VGG_PRETRAIN_PATH`` at construction: it loads that file if
    it exists and downloads otherwise. Both globals are restored afterwards, so other losses are unaffected.
    """
    saved = vgg_arch.VGG_PRETRAIN_PATH, vgg_arch.vgg
    if weights_path is None:
        vgg_arch.VGG_PRETRAIN_PATH = ''  # no file: BasicSR asks the stand-in for 'pretrained' weights
        vgg_arch.vgg = _RandomInitTorchvisionVGG()
    else:
        vgg_arch.VGG_PRETRAIN_PATH = weights_path
    try:
        yield
    finally:
        vgg_arch.VGG_PRETRAIN_PATH, vgg_arch.vgg = saved


@LOSS_REGISTRY.register()
class FacePerceptualLoss(PerceptualLoss):
    """``PerceptualLoss`` (same options, same ``(percep, style)`` return) whose VGG weights come from local disk.

    The weights file is the torchvision one for ``vgg_type`` (``vgg19-dcbb9e9d.pth`` for vgg19), found by
    :func:`sfmnet_plugin.utils.pretrained.resolve_pretrained_file`: ``vgg_weights_path``, else
    ``$SFMNET_PRETRAINED_DIR``, else ``torch.hub.get_dir()/checkpoints``; if none has it, a
    ``FileNotFoundError`` says where to get it. Nothing is ever downloaded.

    SFMNet's GAN stage (docs/fidelity.md §A6.3/§A6.4): VGG19 ``conv5_4`` before its ReLU, images in [0, 1] fed without
    ImageNet normalisation, L1, weight 0.1::

        perceptual_opt:
          type: FacePerceptualLoss
          layer_weights: {conv5_4: 1.0}
          vgg_type: vgg19
          use_input_norm: false
          range_norm: false
          perceptual_weight: 0.1
          style_weight: 0
          criterion: l1
          vgg_weights_path: ~  # or /path/to/vgg19-dcbb9e9d.pth

    Unlike the official code, which detaches both feature maps (so that term never has a gradient), this loss
    back-propagates into the prediction, as BasicSR's does; the model decides whether to use it.

    Args:
        vgg_weights_path (str, optional): Local torchvision VGG state-dict file.
        random_backbone_for_tests (bool): Random-init VGG, for offline tests only (warns). Default: False.
        Other arguments: as ``basicsr.losses.PerceptualLoss``.
    """

    def __init__(self,
                 layer_weights,
                 vgg_type='vgg19',
                 use_input_norm=True,
                 range_norm=False,
                 perceptual_weight=1.0,
                 style_weight=0.,
                 criterion='l1',
                 vgg_weights_path=None,
                 random_backbone_for_tests=False):
        if random_backbone_for_tests:
            if vgg_weights_path:
                raise ValueError('FacePerceptualLoss: set either vgg_weights_path or random_backbone_for_tests.')
            warn_random_weights('FacePerceptualLoss')
            weights_path = None
        else:
            weights_path = resolve_pretrained_file(
                PretrainedFile.torchvision(vgg_type), vgg_weights_path, option_name='vgg_weights_path')
        with _basicsr_vgg_weights(weights_path):
            super().__init__(
                layer_weights,
                vgg_type=vgg_type,
                use_input_norm=use_input_norm,
                range_norm=range_norm,
                perceptual_weight=perceptual_weight,
                style_weight=style_weight,
                criterion=criterion)
