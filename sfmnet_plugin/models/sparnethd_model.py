"""SPARNetHD's GAN training (``docs/fidelity.md`` §B7) on the plugin's face-model base."""
from collections import OrderedDict

import torch
import torch.nn.functional as F
from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.utils.registry import MODEL_REGISTRY

from sfmnet_plugin.models.face_sr_model import FaceSRModel


@MODEL_REGISTRY.register()
class SPARNetHDModel(FaceSRModel):
    """SPARNetHD: a pix2pixHD-style GAN with a multi-scale patch discriminator and an EMA generator.

    The official objective, in BasicSR's terms (``options/_base_/sparnethd_ffhq_x1.yml`` traces every number)::

        generator:  pixel_opt             L1Loss, loss_weight 200   (= 100 x L1 on the official [-1, 1] images)
                    perceptual_opt        FacePerceptualLoss, VGG19 conv1_2 .. conv5_4 before ReLU, weights 1,
                                          ImageNet-normalised, perceptual_weight 1
                    feature_matching_opt  MultiScaleFeatureMatchingLoss, loss_weight 10 (mean over the 3 scales)
                    gan_opt               MultiScaleGANLoss hinge, loss_weight 1 (mean over the 3 scales)
        discriminator: d_loss_weight x gan_opt's hinge on real and fake (0.5: the official halves it)
        optim_g: Adam 1e-4, betas (0.5, 0.99); optim_d: Adam 4e-4, betas (0.5, 0.99); ema_decay 0.999

    What is reused from BasicSR and the plugin: ``FaceSRModel`` (``SRModel``: ``net_g_ema`` built, loaded and saved
    as BasicSR's ``params_ema``; mixed precision, gradient clipping, sharded validation, reports), BasicSR's
    ``MultiScaleGANLoss`` (hinge, averaged over scales), the plugin's ``FacePerceptualLoss`` (BasicSR's
    ``PerceptualLoss`` with local VGG weights) and the discriminator plumbing of ``SRGANModel`` (``net_d_iters``,
    ``net_d_init_iters``, ``pretrain_network_d``, ``net_d_<iter>.pth``).

    What could not be reused, and why:

    * ``SRGANModel.optimize_parameters``: it calls the discriminator once per image set and feeds its output
      straight to the GAN loss; SPARNetHD also needs the discriminator's intermediate features of real and fake
      images for the feature-matching term, and halves the discriminator loss.
    * a feature-matching loss: BasicSR has none (:class:`~sfmnet_plugin.losses.feature_matching_loss.
      MultiScaleFeatureMatchingLoss`).
    * ``BaseModel.model_ema``: it averages parameters only. Every conv of SPARNetHD is spectral-normalised, and the
      spectral norm's power-iteration vectors ``u``/``v`` are buffers; left at their initial values they give the
      EMA generator a wrong normalisation, i.e. garbage outputs. The official EMA averages the whole state dict
      (``H <- 0.999 H + 0.001 G``, §B7 and §B9 item 15): :meth:`model_ema` does that for every floating-point entry
      (parameters and buffers) and copies the others.
    * ``PerceptualLoss`` input size: the official code resizes images narrower than 224 pixels to 224x224
      (bilinear) before VGG; ``train.perceptual_min_size`` (default 224) does it here (no effect at 512).

    Official quirk as an option: ``train.official_ema_before_g_step`` (default false) updates the EMA before the
    generator step, as the official loop does (the EMA then lags one step); BasicSR updates it after.
    """

    option_keys = {'': {'network_d'},  # beyond FaceSRModel's
                   'path': {'pretrain_network_d', 'param_key_d', 'strict_load_d'},
                   'train': {'optim_d', 'feature_matching_opt', 'gan_opt', 'd_loss_weight', 'perceptual_min_size',
                             'official_ema_before_g_step', 'net_d_iters', 'net_d_init_iters'}}

    def init_training_settings(self):
        self.net_d = self.model_to_device(build_network(self.opt['network_d']))
        self.print_network(self.net_d)
        load_path = self.opt['path'].get('pretrain_network_d')
        if load_path is not None:
            param_key = self.opt['path'].get('param_key_d', 'params')
            self.load_network(self.net_d, load_path, self.opt['path'].get('strict_load_d', True), param_key)
        self.net_d.train()
        super().init_training_settings()  # pixel/perceptual losses, EMA copy, then setup_optimizers() below
        train_opt = self.opt['train']
        self.cri_feature_matching = build_loss(train_opt['feature_matching_opt']).to(self.device)
        self.cri_gan = build_loss(train_opt['gan_opt']).to(self.device)
        self.d_loss_weight = train_opt.get('d_loss_weight', 1.0)
        self.perceptual_min_size = train_opt.get('perceptual_min_size', 0)
        self.ema_before_g_step = train_opt.get('official_ema_before_g_step', False)
        self.net_d_iters = train_opt.get('net_d_iters', 1)
        self.net_d_init_iters = train_opt.get('net_d_init_iters', 0)

    def setup_optimizers(self):
        super().setup_optimizers()
        optim_opt = dict(self.opt['train']['optim_d'])
        self.optimizer_d = self.get_optimizer(optim_opt.pop('type'), self.net_d.parameters(), **optim_opt)
        self.optimizers.append(self.optimizer_d)

    def add_perceptual_losses(self, losses):
        """The perceptual term, on images first resized to ``perceptual_min_size`` when narrower (official)."""
        if not self.cri_perceptual:
            return
        output, gt = self.output.float(), self.gt
        if min(gt.shape[-2:]) < self.perceptual_min_size:
            size = (self.perceptual_min_size, self.perceptual_min_size)
            output = F.interpolate(output, size=size, mode='bilinear', align_corners=False)
            gt = F.interpolate(gt, size=size, mode='bilinear', align_corners=False)
        l_percep, l_style = self.cri_perceptual(output, gt)
        if l_percep is not None:
            losses['l_percep'] = l_percep
        if l_style is not None:
            losses['l_style'] = l_style

    def adversarial_losses(self, losses):
        """Add the feature-matching and hinge terms of the current output (the discriminator frozen)."""
        fake_outputs = self.net_d(self.output.float())
        with torch.no_grad():  # the real features are targets only
            real_outputs = self.net_d(self.gt)
        losses['l_g_fm'] = self.cri_feature_matching(fake_outputs, real_outputs)
        losses['l_g_gan'] = self.cri_gan(fake_outputs, True, is_disc=False)

    def optimize_parameters(self, current_iter):
        if self.ema_decay > 0 and self.ema_before_g_step:
            self.model_ema(decay=self.ema_decay)

        loss_dict = self.adversarial_generator_step(current_iter, [self.net_d], self.generator_losses,
                                                    self.adversarial_losses)

        # ---- discriminator: d_loss_weight x (hinge on real + hinge on fake), one backward per term
        self.optimizer_d.zero_grad(set_to_none=True)
        loss_dict.update(self.discriminator_step(self.output.detach().float()))
        self.grad_scaler.step(self.optimizer_d)
        self.grad_scaler.update()

        self.log_dict = self.reduce_loss_dict(loss_dict)
        if self.ema_decay > 0 and not self.ema_before_g_step:
            self.model_ema(decay=self.ema_decay)

    def discriminator_step(self, fake):
        """Backward the discriminator's two hinge terms; returns them and the mean logits (over the scales)."""
        terms = OrderedDict()
        for name, images, is_real in (('real', self.gt, True), ('fake', fake, False)):
            with self.autocast():
                outputs = self.net_d(images)
                loss = self.d_loss_weight * self.cri_gan(outputs, is_real, is_disc=True)
            self.grad_scaler.scale(loss).backward()
            terms[f'l_d_{name}'] = loss.detach()
            terms[f'out_d_{name}'] = torch.stack([scale[-1].detach().float().mean() for scale in outputs]).mean()
        return terms

    @torch.no_grad()
    def model_ema(self, decay=0.999):
        """``net_g_ema <- decay * net_g_ema + (1 - decay) * net_g`` over the whole state dict (official SPARNetHD).

        Floating-point parameters and buffers (the spectral norm's ``u``/``v``) are averaged; other buffers are
        copied. ``decay`` 0 copies ``net_g``.
        """
        ema_state = self.net_g_ema.state_dict()
        for name, value in self.get_bare_model(self.net_g).state_dict().items():
            target = ema_state[name]
            if target.is_floating_point():
                target.mul_(decay).add_(value.to(target.dtype), alpha=1 - decay)
            else:
                target.copy_(value)

    def save(self, epoch, current_iter):
        # The discriminator before the generator and the training state: a state on disk always has all its
        # networks. File names follow BasicSR's resume convention (network_d -> net_d_<iter>.pth).
        self.save_network(self.net_d, 'net_d', current_iter)
        super().save(epoch, current_iter)  # net_g_<iter>.pth (params and params_ema), then the training state
