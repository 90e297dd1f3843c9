"""``FaceSRModel``: the training, validation and test machinery every face-SR network of the plugin shares.

One registered base serves any single-output face network (SPARNet, or any network in
``ARCH_REGISTRY`` that maps an LR face to an SR face); networks with extra objectives subclass it
and override only the hooks below (``SFMNetModel`` adds SFMNet's frequency-branch losses,
``SFMNetGANModel`` its discriminators).

One training step is split into hooks, so subclasses change one part without copying the rest::

    optimize_parameters(current_iter)
      zero_grad
      with autocast():
        forward_generator()            # sets self.output (and whatever else the losses need)
        generator_losses()             # OrderedDict of weighted terms:
          reconstruction_losses()      #   pixel-space terms (here: pixel_opt)
          add_perceptual_losses(...)   #   BasicSR's perceptual/style terms (perceptual_opt)
      backward_and_step(total, optimizer_g, net_g)   # fp16 scaling, gradient clipping, step
      grad_scaler.update(); log; EMA
"""
from collections import OrderedDict
from contextlib import nullcontext
from os import path as osp

import numpy as np
import torch
from basicsr.losses import build_loss
from basicsr.metrics import calculate_metric
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger, imwrite, tensor2img
from basicsr.utils.registry import MODEL_REGISTRY
from torch.utils.data import DataLoader, Subset

from sfmnet_plugin.archs.pil_resize import resize_as_8bit
from sfmnet_plugin.compat.model_methods import PluginModelMethods
from sfmnet_plugin.metrics.fid import FidScorer, inception_features
from sfmnet_plugin.models.reports import write_contact_sheet, write_metrics_csv, write_summary_markdown

AUTOCAST_DTYPES = {'none': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}
SR_QUANTIZATIONS = ('round', 'truncate')


def build_optional_loss(train_opt, key, device):
    """The loss configured under ``train_opt[key]``, or None when the key is absent or empty."""
    return build_loss(train_opt[key]).to(device) if train_opt.get(key) else None


def gather_from_all_ranks(items, world_size):
    """Concatenate the lists ``items`` of every rank (in rank order) on every rank."""
    if world_size == 1:
        return items
    from mmengine.dist import all_gather_object

    return [item for rank_items in all_gather_object(items) for item in rank_items]


def image_name(data):
    path = data['lq_path'][0] if 'lq_path' in data else data['gt_path'][0]
    return osp.splitext(osp.basename(path))[0]


def quantize_sr(tensor, method):
    """The SR image as BasicSR's uint8 BGR HWC array, rounded (BasicSR) or truncated (SPARNet's ``test.py``).

    SPARNet saved ``((y + 1) / 2 * 255).clip(0, 255).astype(uint8)``: truncation, about half a grey
    level darker on average than rounding, and its published numbers were measured on those files.
    """
    if method == 'round':
        return tensor2img([tensor])
    return tensor2img([tensor.clamp(0, 1).mul(255).floor().div(255)])


def set_requires_grad(nets, flag):
    for net in nets:
        for p in net.parameters():
            p.requires_grad = flag


@MODEL_REGISTRY.register()
class FaceSRModel(PluginModelMethods, SRModel):
    """A face-SR network trained with BasicSR's pixel/perceptual losses, validated and tested like a paper.

    ``network_g`` is any registered network that takes the LR face (``[0, 1]``) and returns the SR face.
    On top of BasicSR's ``SRModel`` (``pixel_opt``, ``perceptual_opt``, EMA with ``ema_decay``, schedulers), and of
    the plugin's model methods (:class:`~sfmnet_plugin.compat.model_methods.PluginModelMethods`: atomic and
    safetensors saves with options, exact resume, non-finite guards):

    * ``train.mixed_precision``: ``none`` (default), ``bf16`` or ``fp16`` autocast (with a gradient
      scaler for fp16); the losses are computed in float32.
    * ``train.grad_clip_norm``: clip the generator's gradient norm (off when absent).
    * ``train.channels_last``: the trained networks keep their weights in channels_last (NHWC) layout, which
      oneDNN's and cuDNN's reduced-precision convolutions prefer (off by default; docs/speed.md has the numbers).
    * ``train.compile``: ``torch.compile`` the trained networks in place (``nn.Module.compile``: checkpoints keep
      their keys); the first iterations pay the compilation. Off by default: it did not speed up a CPU step.
    * EMA (``ema_decay`` > 0) also copies the buffers (BatchNorm running statistics) into the EMA
      network; BasicSR averages the parameters only, which leaves a BatchNorm network's EMA copy
      with its initial statistics.
    * validation runs on every rank's share of the images under DDP and gathers the per-image
      results, so distributed validation equals single-process validation;
    * ``val.compare_bicubic``: also score the PIL-bicubic upsampling of each 8-bit LR image
      (default: on when testing, off when training);
    * ``val.sr_quantization``: ``round`` (default, BasicSR) or ``truncate`` (SPARNet's test script)
      turns the SR output into the uint8 image that is scored and saved;
    * when testing: ``<dataset>_metrics.csv`` (per image), ``<dataset>_summary.md`` and
      ``<dataset>_contact_sheet.png`` (``val.contact_sheet`` images, default 8) in ``results/<name>/``.
    * ``val.fid``: ``{reference: folder | LMDB | stats.npz, weights_path: pt_inception-...pth (optional)}``: the FID
      of the SR images against the reference (:mod:`sfmnet_plugin.metrics.fid`), logged as metric ``fid`` after
      the per-image metrics (the reference statistics are computed once per process).
    """

    # The option keys this class reads beyond its parents' (section -> keys; checked by config.option_schema).
    option_keys = {'train': {'mixed_precision', 'grad_clip_norm', 'channels_last', 'compile'},
                   'val': {'compare_bicubic', 'contact_sheet', 'sr_quantization', 'fid'}}

    # ------------------------------------------------------------------ training

    def init_training_settings(self):
        super().init_training_settings()
        train_opt = self.opt['train']
        precision = train_opt.get('mixed_precision', 'none')
        if precision not in AUTOCAST_DTYPES:
            raise ValueError(f'train.mixed_precision must be one of {sorted(AUTOCAST_DTYPES)}, got {precision!r}.')
        self.autocast_dtype = AUTOCAST_DTYPES[precision]
        self.grad_scaler = torch.amp.GradScaler(self.device.type, enabled=self.autocast_dtype == torch.float16)
        self.grad_clip_norm = train_opt.get('grad_clip_norm')

    def model_to_device(self, net):
        """BasicSR's device move and DDP wrap, after ``train.channels_last`` and ``train.compile``."""
        train_opt = self.opt.get('train') or {}
        if train_opt.get('channels_last', False):
            net = net.to(memory_format=torch.channels_last)
        if train_opt.get('compile', False):
            net.compile()
        return super().model_to_device(net)

    def autocast(self):
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def forward_generator(self):
        """Set ``self.output``, the SR image of ``self.lq``."""
        self.output = self.net_g(self.lq)

    def reconstruction_losses(self):
        """The pixel-space terms of the current output: ``l_pix`` when ``pixel_opt`` is set."""
        losses = OrderedDict()
        if self.cri_pix:
            losses['l_pix'] = self.cri_pix(self.output.float(), self.gt)
        return losses

    def add_perceptual_losses(self, losses):
        """Add BasicSR's perceptual and style terms (when ``perceptual_opt`` is set) to ``losses``."""
        if self.cri_perceptual:
            l_percep, l_style = self.cri_perceptual(self.output.float(), self.gt)
            if l_percep is not None:
                losses['l_percep'] = l_percep
            if l_style is not None:
                losses['l_style'] = l_style

    def generator_losses(self):
        """Every weighted term the generator minimises in one step (summed into ``l_total``)."""
        losses = self.reconstruction_losses()
        self.add_perceptual_losses(losses)
        return losses

    def backward_and_step(self, loss, optimizer, net):
        """Backward (scaled under fp16), optional gradient clipping of ``net``, optimizer step."""
        self.grad_scaler.scale(loss).backward()
        if self.grad_clip_norm:
            self.grad_scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(net.parameters(), self.grad_clip_norm)
        self.grad_scaler.step(optimizer)

    def adversarial_generator_step(self, current_iter, discriminators, losses, add_adversarial_losses):
        """The generator half of a GAN step, shared by the GAN models: with ``discriminators`` frozen (no gradients
        are computed for them), ``losses()`` under autocast plus ``add_adversarial_losses(terms)`` on the iterations
        BasicSR's ``net_d_iters`` / ``net_d_init_iters`` select, one backward and optimizer step; the
        discriminators are trainable again afterwards. Returns the terms and their sum, ``l_g_total``."""
        set_requires_grad(discriminators, False)
        self.optimizer_g.zero_grad(set_to_none=True)
        with self.autocast():
            self.forward_generator()
            loss_dict = losses()
            if current_iter % self.net_d_iters == 0 and current_iter > self.net_d_init_iters:
                add_adversarial_losses(loss_dict)
            l_g_total = sum(loss_dict.values())
        self.backward_and_step(l_g_total, self.optimizer_g, self.net_g)
        loss_dict['l_g_total'] = l_g_total
        set_requires_grad(discriminators, True)
        return loss_dict

    def optimize_parameters(self, current_iter):
        self.optimizer_g.zero_grad(set_to_none=True)
        with self.autocast():
            self.forward_generator()
            loss_dict = self.generator_losses()
            l_total = sum(loss_dict.values())
        self.backward_and_step(l_total, self.optimizer_g, self.net_g)
        self.grad_scaler.update()
        loss_dict['l_total'] = l_total
        self.log_dict = self.reduce_loss_dict(loss_dict)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    def model_ema(self, decay=0.999):
        """BasicSR's parameter EMA, then the buffers (BatchNorm running statistics) copied from ``net_g``."""
        super().model_ema(decay)
        net_g = self.get_bare_model(self.net_g)
        ema_buffers = dict(self.net_g_ema.named_buffers())
        for name, buffer in net_g.named_buffers():
            ema_buffers[name].copy_(buffer)

    # ------------------------------------------------------------------ validation and testing

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        self.validate_share(dataloader, current_iter, tb_logger, save_img, rank=0, world_size=1)

    def dist_validation(self, dataloader, current_iter, tb_logger, save_img):
        self.validate_share(dataloader, current_iter, tb_logger, save_img, self.opt['rank'], self.opt['world_size'])

    def validate_share(self, dataloader, current_iter, tb_logger, save_img, rank, world_size):
        """Score this rank's share of the images, gather every rank's rows, then log and report."""
        dataset = dataloader.dataset
        dataset_name = dataset.opt['name']
        val_opt = self.opt['val']
        testing = not self.opt['is_train']
        compare_bicubic = val_opt.get('compare_bicubic', testing)
        sheet_size = val_opt.get('contact_sheet', 8 if testing else 0)
        quantization = val_opt.get('sr_quantization', 'round')
        if quantization not in SR_QUANTIZATIONS:
            raise ValueError(f'val.sr_quantization must be one of {SR_QUANTIZATIONS}, got {quantization!r}.')
        indices = list(range(rank, len(dataset), world_size))
        share = DataLoader(Subset(dataset, indices), batch_size=1, shuffle=False, num_workers=dataloader.num_workers)

        rows, panels = [], []
        for index, data in zip(indices, share):
            row, panel = self.score_one_image(data, index, current_iter, dataset_name, save_img, compare_bicubic,
                                              keep_panel=index < sheet_size, quantization=quantization)
            rows.append(row)
            if panel is not None:
                panels.append((index, panel))
        rows = sorted(gather_from_all_ranks(rows, world_size), key=lambda row: row['index'])
        set_metrics = {}
        if self.fid_scorer() is not None and rows:  # the features travelled with the rows; FID over all of them
            set_metrics['fid'] = self.fid_scorer().fid_of(np.stack([row.pop('fid_features') for row in rows]))
        panels = [panel for _, panel in sorted(gather_from_all_ranks(panels, world_size), key=lambda p: p[0])]

        metric_names = list(val_opt.get('metrics') or {})
        if (metric_names or set_metrics) and rows:
            self.record_metric_means(rows, metric_names, dataset_name, current_iter, tb_logger, compare_bicubic,
                                     set_metrics)
        if testing and self.opt['rank'] == 0 and rows:
            self.write_test_reports(dataset_name, rows, metric_names, panels)

    def score_one_image(self, data, index, current_iter, dataset_name, save_img, compare_bicubic, keep_panel,
                        quantization='round'):
        """Run the network on one validation sample: its metrics row and (``keep_panel``) its contact-sheet panel.

        The bicubic baseline is only computed when a metric or the panel uses it.
        """
        name = image_name(data)
        self.feed_data(data)
        self.test()
        sr_img = quantize_sr(self.output.detach().cpu(), quantization)
        row, panel = {'index': index, 'image': name}, None
        if self.fid_scorer() is not None:
            row['fid_features'] = inception_features(self.fid_scorer().network, [sr_img[..., ::-1]])[0]
        if hasattr(self, 'gt'):
            gt_img = tensor2img([self.gt.detach().cpu()])
            bicubic_img = None
            if compare_bicubic or keep_panel:
                bicubic = resize_as_8bit(self.lq.detach().cpu().float(), tuple(self.gt.shape[-2:]))
                bicubic_img = tensor2img([bicubic])
            for metric_name, metric_opt in (self.opt['val'].get('metrics') or {}).items():
                row[metric_name] = float(calculate_metric({'img': sr_img, 'img2': gt_img}, metric_opt))
                if compare_bicubic:
                    row[f'bicubic_{metric_name}'] = float(
                        calculate_metric({'img': bicubic_img, 'img2': gt_img}, metric_opt))
            if keep_panel:
                panel = (name, (tensor2img([self.lq.detach().cpu()]), bicubic_img, sr_img, gt_img))
            del self.gt
        if save_img:
            imwrite(sr_img, self.saved_image_path(name, current_iter, dataset_name))
        del self.lq, self.output
        return row, panel

    def fid_scorer(self):
        """The :class:`FidScorer` of ``val.fid`` (None without it), built once: the reference is read once."""
        fid_opt = (self.opt.get('val') or {}).get('fid')
        if not fid_opt:
            return None
        if getattr(self, '_fid_scorer', None) is None:
            if not fid_opt.get('reference'):
                raise ValueError('val.fid needs a reference: a folder, an LMDB or an .npz of FID statistics.')
            self._fid_scorer = FidScorer(fid_opt['reference'], fid_opt.get('weights_path'), self.device)
        return self._fid_scorer

    def saved_image_path(self, name, current_iter, dataset_name):
        """Where BasicSR's SRModel would save this SR image."""
        if self.opt['is_train']:
            return osp.join(self.opt['path']['visualization'], name, f'{name}_{current_iter}.png')
        suffix = self.opt['val'].get('suffix') or self.opt['name']
        return osp.join(self.opt['path']['visualization'], dataset_name, f'{name}_{suffix}.png')

    def record_metric_means(self, rows, metric_names, dataset_name, current_iter, tb_logger, compare_bicubic,
                            set_metrics=None):
        """Set ``metric_results`` to the means over images, track the best, log them (and the bicubic baseline).

        ``set_metrics`` (FID: lower is better) are logged and tracked with them.
        """
        self._initialize_best_metric_results(dataset_name)
        self.metric_results = {m: sum(row[m] for row in rows) / len(rows) for m in metric_names}
        self.metric_results.update(set_metrics or {})
        for metric in set_metrics or {}:
            self.best_metric_results[dataset_name].setdefault(metric, {'better': 'lower', 'val': float('inf'),
                                                                       'iter': -1})
        for metric, value in self.metric_results.items():
            self._update_best_metric_result(dataset_name, metric, value, current_iter)
        self._log_validation_metric_values(current_iter, dataset_name, tb_logger)
        if compare_bicubic:
            baseline = {m: sum(row[f'bicubic_{m}'] for row in rows) / len(rows) for m in metric_names}
            get_root_logger().info(f'Bicubic baseline on {dataset_name}: ' +
                                   ', '.join(f'{m}: {v:.4f}' for m, v in baseline.items()))
            if tb_logger:
                for metric, value in baseline.items():
                    tb_logger.add_scalar(f'metrics/{dataset_name}/bicubic_{metric}', value, current_iter)

    def write_test_reports(self, dataset_name, rows, metric_names, panels):
        results_root = self.opt['path']['results_root']
        write_metrics_csv(osp.join(results_root, f'{dataset_name}_metrics.csv'), rows, metric_names)
        if metric_names:
            write_summary_markdown(osp.join(results_root, f'{dataset_name}_summary.md'),
                                   f'{self.opt["name"]} on {dataset_name}', rows, metric_names,
                                   method_name=self.opt['network_g']['type'])
        if panels:
            columns = ('LR', 'Bicubic', self.opt['network_g']['type'], 'HR')  # the SR column named by the network
            write_contact_sheet(osp.join(results_root, f'{dataset_name}_contact_sheet.png'), panels, columns=columns)
