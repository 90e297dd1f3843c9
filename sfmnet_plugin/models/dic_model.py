"""DIC's training (``docs/fidelity.md`` Part DIC): the SR loss on every step plus the landmark-heatmap loss."""
from collections import OrderedDict
from os import path as osp

from basicsr.losses import build_loss
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY

from sfmnet_plugin.models.face_sr_model import FaceSRModel, set_requires_grad
from sfmnet_plugin.utils.safe_loading import load_torch_file

HOURGLASS_CHECKPOINT = 'FB_HG_68_CelebA.pth'


@MODEL_REGISTRY.register()
class DICModel(FaceSRModel):
    """DIC: every recurrent step's SR image and landmark heatmaps are supervised (official ``SRLandmarkSolver``).

    The official objective, summed over the ``num_steps`` steps ``t`` (``options/_base_/dic_celeba_x8.yml`` traces
    every number)::

        pixel_opt:   {type: L1Loss, loss_weight: 1.0}    # L1(sr_t, gt)             -> logged as l_pix (sum over t)
        heatmap_opt: {type: MSELoss, loss_weight: 0.1}   # MSE(heatmap_t, gt heatmap) -> logged as l_heatmap

    The ground-truth heatmaps come from the training set's landmarks (``PairedFaceDataset`` option
    ``landmarks: 68``). Two more official settings:

    * ``path.pretrain_network_hourglass``: the pretrained landmark estimator the official training starts from
      (``FB_HG_68_CelebA.pth`` of the official release: the state dict of the feedback hourglass, loaded into
      ``net_g.HG``). It is loaded only when the network does not come from ``pretrain_network_g`` (a resumed or
      fine-tuned run already holds a trained hourglass). A missing file is an error naming the option; set it to
      ``~`` to train the hourglass from its random initialisation instead (not the paper's recipe).
    * ``train.release_hg_grad_iter``: the hourglass's parameters are frozen up to and including this iteration
      and trained after it (official ``release_HG_grad_step`` 2000); the heatmap loss still reaches the SR branch
      through the hourglass while it is frozen. 0 trains it from the start.

    Validation and testing use the final step's SR image (``net_g(lq)``).
    """

    option_keys = {'path': {'pretrain_network_hourglass'}, 'train': {'heatmap_opt', 'release_hg_grad_iter'}}

    def __init__(self, opt):
        super().__init__(opt)
        hourglass = (opt.get('path') or {}).get('pretrain_network_hourglass')
        if self.is_train and hourglass and not opt['path'].get('pretrain_network_g'):
            self.load_hourglass(hourglass)

    def load_hourglass(self, path):
        """Load the official pretrained hourglass (a raw state dict, ``module.``/``HG.`` prefixes allowed) strictly."""
        path = osp.expanduser(path)
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'path.pretrain_network_hourglass: {path!r} not found. It is the official pretrained landmark '
                f'estimator {HOURGLASS_CHECKPOINT} (the "models" folder of the official DIC release, Maclory/Deep-'
                'Iterative-Collaboration); download it there, or set pretrain_network_hourglass: ~ to train the '
                'hourglass from scratch.')
        state_dict = load_torch_file(path, what='hourglass checkpoint')
        state_dict = state_dict.get('state_dict', state_dict)  # an official training checkpoint holds it there
        # DataParallel's "module." and a whole DIC's "HG." prefixes
        for prefix in ('module.', 'HG.'):
            state_dict = {key[len(prefix):] if key.startswith(prefix) else key: value
                          for key, value in state_dict.items()}
        hourglass = self.get_bare_model(self.net_g).HG
        result = hourglass.load_state_dict(state_dict, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise ValueError(f'path.pretrain_network_hourglass: {path} is not a DIC feedback hourglass of this size: '
                             f'missing keys {result.missing_keys[:3]}, unexpected keys {result.unexpected_keys[:3]}.')
        get_root_logger().info(f'Loaded the pretrained hourglass {path} into net_g.HG.')

    def init_training_settings(self):
        super().init_training_settings()
        train_opt = self.opt['train']
        self.cri_heatmap = build_loss(train_opt['heatmap_opt']).to(self.device) if train_opt.get('heatmap_opt') \
            else None
        self.release_hg_grad_iter = int(train_opt.get('release_hg_grad_iter', 0))

    def setup_optimizers(self):
        """BasicSR's optimizer over every parameter, the hourglass's too (official: Adam over all parameters,
        the frozen ones simply get no gradient until they are released)."""
        train_opt = self.opt['train']
        optim_opt = dict(train_opt['optim_g'])
        optim_type = optim_opt.pop('type')
        self.optimizer_g = self.get_optimizer(optim_type, list(self.net_g.parameters()), **optim_opt)
        self.optimizers.append(self.optimizer_g)

    def feed_data(self, data):
        super().feed_data(data)
        if 'heatmap' in data:
            self.gt_heatmap = data['heatmap'].to(self.device)

    def optimize_parameters(self, current_iter):
        set_requires_grad([self.get_bare_model(self.net_g).HG], current_iter > self.release_hg_grad_iter)
        super().optimize_parameters(current_iter)

    def forward_generator(self):
        """Set ``self.output`` (the final SR), ``self.output_steps`` and ``self.heatmap_steps`` (every step's)."""
        self.output_steps, self.heatmap_steps = self.net_g(self.lq, return_steps=True)
        self.output = self.output_steps[-1]

    def reconstruction_losses(self):
        losses = OrderedDict()
        if self.cri_pix:
            losses['l_pix'] = sum(self.cri_pix(sr.float(), self.gt) for sr in self.output_steps)
        if self.cri_heatmap:
            if not hasattr(self, 'gt_heatmap'):
                raise ValueError('train.heatmap_opt needs landmark heatmaps in the training data: set landmarks: 68 '
                                 'in datasets.train (faces prepared with --landmarks 68).')
            losses['l_heatmap'] = sum(self.cri_heatmap(heatmap.float(), self.gt_heatmap)
                                      for heatmap in self.heatmap_steps)
        return losses
