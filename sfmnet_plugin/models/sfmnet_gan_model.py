"""SFMNet's second (GAN) training stage: a spatial and a frequency discriminator."""
from collections import OrderedDict

import torch
from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.utils.registry import MODEL_REGISTRY

from sfmnet_plugin.models.sfmnet_model import SFMNetModel


@MODEL_REGISTRY.register()
class SFMNetGANModel(SFMNetModel):
    """SFMNet-GAN (docs/fidelity.md §A6): the stage-1 objective plus perceptual and two adversarial terms.

    Warm-starts from a PSNR-stage checkpoint (``path.pretrain_network_g``). Networks and losses::

        network_d:           {type: SFMNetSpatialDiscriminator}    # sees the SR image
        network_d_frequency: {type: SFMNetFrequencyDiscriminator}  # sees |rfft2| and phase of the SR image
        train:
          perceptual_opt:     {type: FacePerceptualLoss, layer_weights: {conv5_4: 1.0}, perceptual_weight: 0.1, ...}
          gan_opt:            {type: GANLoss, gan_type: vanilla, loss_weight: 0.0005}
          gan_frequency_opt:  {type: GANLoss, gan_type: vanilla, loss_weight: 0.1}
          frequency_d_loss_weight: 0.1    # the official code scales the frequency discriminator's loss
          optim_d / optim_d_frequency     # optim_d_frequency defaults to optim_d

    Two bugs of the official GAN code are reproducible, each by its own option (both off by default,
    which gives the intended behaviour):

    * ``official_detached_perceptual``: the official code detaches both VGG feature maps, so the
      perceptual term is logged but gives the generator no gradient (its effective objective is
      ``L_pix + 0.0005 L_adv + 0.1 L_adv_frequency``).
    * ``official_detached_frequency_fake``: the official code detaches the frequency
      discriminator's logits on generated images, so that discriminator only ever learns "real".

    The official script also re-creates its Adam optimisers every epoch; this model keeps their state.
    ``net_d_iters`` and ``net_d_init_iters`` behave as in BasicSR's ``SRGANModel``.
    """

    option_keys = {'': {'network_d', 'network_d_frequency'},  # beyond SFMNetModel's
                   'path': {'pretrain_network_d', 'strict_load_d', 'pretrain_network_d_frequency',
                            'strict_load_d_frequency'},
                   'train': {'optim_d', 'optim_d_frequency', 'gan_opt', 'gan_frequency_opt', 'frequency_d_loss_weight',
                             'official_detached_perceptual', 'official_detached_frequency_fake', 'net_d_iters',
                             'net_d_init_iters'}}

    def init_training_settings(self):
        self.net_d = self.build_discriminator('network_d', 'pretrain_network_d', 'strict_load_d')
        self.net_d_frequency = None
        if self.opt.get('network_d_frequency'):
            self.net_d_frequency = self.build_discriminator('network_d_frequency', 'pretrain_network_d_frequency',
                                                            'strict_load_d_frequency')
        super().init_training_settings()  # stage-1 losses, EMA, then setup_optimizers() below
        train_opt = self.opt['train']
        self.cri_gan = build_loss(train_opt['gan_opt']).to(self.device)
        self.cri_gan_frequency = None
        if self.net_d_frequency is not None:
            self.cri_gan_frequency = build_loss(train_opt.get('gan_frequency_opt') or train_opt['gan_opt']).to(
                self.device)
        self.frequency_d_loss_weight = train_opt.get('frequency_d_loss_weight', 1.0)
        self.official_detached_perceptual = train_opt.get('official_detached_perceptual', False)
        self.official_detached_frequency_fake = train_opt.get('official_detached_frequency_fake', False)
        self.net_d_iters = train_opt.get('net_d_iters', 1)
        self.net_d_init_iters = train_opt.get('net_d_init_iters', 0)

    def build_discriminator(self, network_key, pretrain_key, strict_key):
        net = self.model_to_device(build_network(self.opt[network_key]))
        self.print_network(net)
        load_path = self.opt['path'].get(pretrain_key)
        if load_path is not None:
            self.load_network(net, load_path, self.opt['path'].get(strict_key, True), 'params')
        net.train()
        return net

    @property
    def discriminators(self):
        return [net for net in (self.net_d, self.net_d_frequency) if net is not None]

    def setup_optimizers(self):
        super().setup_optimizers()
        train_opt = self.opt['train']
        self.optimizer_d = self.build_optimizer(dict(train_opt['optim_d']), self.net_d)
        if self.net_d_frequency is not None:
            optim_opt = dict(train_opt.get('optim_d_frequency') or train_opt['optim_d'])
            self.optimizer_d_frequency = self.build_optimizer(optim_opt, self.net_d_frequency)

    def build_optimizer(self, optim_opt, net):
        optimizer = self.get_optimizer(optim_opt.pop('type'), net.parameters(), **optim_opt)
        self.optimizers.append(optimizer)
        return optimizer

    def add_gan_stage_losses(self, losses):
        """Add the generator's perceptual and adversarial terms to ``losses``."""
        if self.cri_perceptual and self.official_detached_perceptual:
            with torch.no_grad():  # official: both feature maps detached -> logged, no gradient
                l_percep = self.cri_perceptual(self.output.float(), self.gt)[0]
            if l_percep is not None:
                losses['l_percep'] = l_percep
        else:
            self.add_perceptual_losses(losses)
        output = self.output.float()
        losses['l_g_gan'] = self.cri_gan(self.net_d(output), True, is_disc=False)
        if self.net_d_frequency is not None:
            losses['l_g_gan_frequency'] = self.cri_gan_frequency(self.net_d_frequency(output), True, is_disc=False)

    def optimize_parameters(self, current_iter):
        loss_dict = self.adversarial_generator_step(current_iter, self.discriminators, self.reconstruction_losses,
                                                    self.add_gan_stage_losses)

        # ---- discriminators: one forward and backward per term (what DDP expects)
        fake = self.output.detach().float()
        self.optimizer_d.zero_grad(set_to_none=True)
        loss_dict.update(self.discriminator_step(self.net_d, self.cri_gan, fake, 1.0, detach_fake_logits=False))
        self.grad_scaler.step(self.optimizer_d)
        if self.net_d_frequency is not None:
            self.optimizer_d_frequency.zero_grad(set_to_none=True)
            terms = self.discriminator_step(self.net_d_frequency, self.cri_gan_frequency, fake,
                                            self.frequency_d_loss_weight, self.official_detached_frequency_fake)
            loss_dict.update({f'{name}_frequency': value for name, value in terms.items()})
            self.grad_scaler.step(self.optimizer_d_frequency)
        self.grad_scaler.update()

        self.log_dict = self.reduce_loss_dict(loss_dict)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    def discriminator_step(self, net, criterion, fake, weight, detach_fake_logits):
        """Backward ``weight * (BCE(D(gt), real) + BCE(D(fake), fake))``; returns the logged terms."""
        with self.autocast():
            real_logits = net(self.gt)
            l_d_real = weight * criterion(real_logits, True, is_disc=True)
        self.grad_scaler.scale(l_d_real).backward()
        if detach_fake_logits:
            with torch.no_grad():  # official: the fake logits are detached, so this term trains nothing
                fake_logits = net(fake)
                l_d_fake = weight * criterion(fake_logits, False, is_disc=True)
        else:
            with self.autocast():
                fake_logits = net(fake)
                l_d_fake = weight * criterion(fake_logits, False, is_disc=True)
            self.grad_scaler.scale(l_d_fake).backward()
        return OrderedDict(l_d_real=l_d_real, l_d_fake=l_d_fake, out_d_real=real_logits.detach().mean(),
                           out_d_fake=fake_logits.detach().mean())

    def save(self, epoch, current_iter):
        # Networks before the training state: a state on disk always has all its networks.
        # (File names follow BasicSR's resume convention: network_<x> -> net_<x>_<iter>.pth.)
        self.save_network(self.net_d, 'net_d', current_iter)
        if self.net_d_frequency is not None:
            self.save_network(self.net_d_frequency, 'net_d_frequency', current_iter)
        super().save(epoch, current_iter)  # generator (and EMA), then the training state
