"""SFMNet's PSNR-oriented training stage: FaceSRModel plus SFMNet's frequency-branch losses."""
from basicsr.utils.registry import MODEL_REGISTRY

from sfmnet_plugin.models.face_sr_model import FaceSRModel, build_optional_loss


@MODEL_REGISTRY.register()
class SFMNetModel(FaceSRModel):
    """SFMNet's first (PSNR) stage: the dual pixel loss and the frequency loss.

    The official objective (docs/fidelity.md §A5) is
    ``L1(sr, gt) + L1(sr_frequency, gt) + 0.01 * (L1 of amplitudes + L1 of phases)(sr_frequency, gt)``,
    configured in ``train`` as::

        pixel_opt:                  {type: L1Loss, loss_weight: 1.0}        # spatial-branch output (the SR image)
        frequency_branch_pixel_opt: {type: L1Loss, loss_weight: 1.0}        # frequency-branch output
        frequency_opt:              {type: FrequencyLoss, loss_weight: 0.01}  # on the frequency-branch output

    Everything else (mixed precision, gradient clipping, sharded DDP validation, the bicubic
    baseline, test reports) is :class:`FaceSRModel`'s. A network without a frequency branch can be
    trained too, as long as no frequency-branch loss is set.
    """

    option_keys = {'train': {'frequency_branch_pixel_opt', 'frequency_opt'}}  # beyond FaceSRModel's

    def init_training_settings(self):
        super().init_training_settings()
        train_opt = self.opt['train']
        self.cri_frequency_branch_pix = build_optional_loss(train_opt, 'frequency_branch_pixel_opt', self.device)
        self.cri_frequency = build_optional_loss(train_opt, 'frequency_opt', self.device)

    @property
    def needs_frequency_output(self):
        return self.cri_frequency_branch_pix is not None or self.cri_frequency is not None

    def forward_generator(self):
        """Set ``self.output`` (the SR image) and ``self.output_frequency`` (frequency branch, or None)."""
        if self.needs_frequency_output:
            self.output, self.output_frequency = self.net_g(self.lq, return_frequency=True)
        else:
            self.output, self.output_frequency = self.net_g(self.lq), None

    def reconstruction_losses(self):
        """The stage-1 terms (pixel losses on both branches, frequency loss) of the current outputs."""
        losses = super().reconstruction_losses()
        gt = self.gt
        if self.cri_frequency_branch_pix:
            losses['l_pix_frequency_branch'] = self.cri_frequency_branch_pix(self.output_frequency.float(), gt)
        if self.cri_frequency:
            losses['l_amplitude'], losses['l_phase'] = self.cri_frequency.weighted_terms(
                self.output_frequency.float(), gt)
        return losses
