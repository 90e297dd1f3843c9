"""``DegradedFaceDataset``: HR faces whose LR input is made on the fly by SPARNetHD's degradation chain."""
import numpy as np
from basicsr.utils import img2tensor
from basicsr.utils.registry import DATASET_REGISTRY
from PIL import Image

from sfmnet_plugin.data.downsample import check_divisible
from sfmnet_plugin.data.face_degradation import FaceDegradation, degrade_face
from sfmnet_plugin.data.paired_face_dataset import PairedFaceDataset


@DATASET_REGISTRY.register()
class DegradedFaceDataset(PairedFaceDataset):
    """Blind face restoration data: clean HR faces, LR made by :func:`.face_degradation.degrade_face`.

    The HR faces are read exactly as :class:`PairedFaceDataset` reads them (LMDB or folder, keys, ``meta_info_file``,
    any image mode to RGB); there is no stored LR. Each sample runs the SPARNetHD chain (random grey, one of four
    blurs, a random down-and-up resize, noise, JPEG; ``docs/fidelity.md`` §B7).

    Options (``opt``), besides PairedFaceDataset's ``dataroot_gt``, ``io_backend``, ``meta_info_file``, ``phase``:
        scale (int): LR size = HR size / scale; 1 (SPARNetHD) gives an LR as large as the HR.
        hr_size (int, optional): resize every HR to ``hr_size`` x ``hr_size`` with PIL bicubic first (the official
            loader read the 1024x1024 FFHQ release and resized it to 512 this way); default: as stored.
        degradation (dict, optional): :class:`~sfmnet_plugin.data.face_degradation.FaceDegradation` fields
            (probabilities and ranges; defaults = the official values).
        degradation_seed (int, optional): when set, image ``i`` is always degraded the same way (its generator is
            seeded with ``(degradation_seed, i)``): a fixed validation set. When absent (training), every draw is
            new, seeded from numpy's global generator, which BasicSR seeds per DataLoader worker from
            ``manual_seed``, so a run is reproducible for a given number of workers.
        num_images (int, optional): use only the first ``num_images`` images (sorted keys), e.g. a quick
            validation subset of FFHQ's 10,000 validation faces.
        use_hflip (bool): random horizontal flip of the HR with p 0.5 (training only; default False, the official
            loader has none).

    Each sample: ``lq`` and ``gt`` (3 x H x W float32 RGB in [0, 1]; ``gt`` is grey when the grey step was
    drawn), ``lq_path`` = ``gt_path`` (the HR's key or file).
    """

    option_keys = frozenset({'dataroot_gt', 'dataroot_lq', 'io_backend', 'scale', 'phase', 'meta_info_file',
                             'check_images_at_start', 'hr_size', 'degradation', 'degradation_seed', 'num_images',
                             'use_hflip'})  # dataroot_lq only to be refused with a useful message

    def __init__(self, opt):
        if opt.get('dataroot_lq'):
            raise ValueError('DegradedFaceDataset makes the LR from the HR: remove dataroot_lq '
                             f'({opt["dataroot_lq"]!r}), or use PairedFaceDataset for stored LR images.')
        super().__init__(opt)
        if opt.get('num_images') is not None:
            if int(opt['num_images']) < 1:
                raise ValueError(f'DegradedFaceDataset num_images must be positive, got {opt["num_images"]}.')
            self.keys = self.keys[:int(opt['num_images'])]
        self.hr_size = opt.get('hr_size')
        if self.hr_size is not None:
            check_divisible(self.hr_size, self.hr_size, self.scale, f'DegradedFaceDataset hr_size {self.hr_size}')
        self.degradation = FaceDegradation.from_options(opt.get('degradation'))
        self.degradation_seed = opt.get('degradation_seed')

    def generator_for(self, index):
        """The generator of sample ``index``: fixed by ``degradation_seed``, else fresh from numpy's global one."""
        if self.degradation_seed is not None:
            return np.random.default_rng([int(self.degradation_seed), index])
        return np.random.default_rng(np.random.randint(2 ** 31, size=2))

    def load_hr(self, index):
        """The uint8 RGB HR face of sample ``index`` (resized to ``hr_size`` when set) and its path."""
        gt_path = self.gt_paths[self.keys[index]]
        img_gt = self._load(gt_path, 'gt', self.gt_root)
        if self.hr_size is not None and img_gt.shape[:2] != (self.hr_size, self.hr_size):
            img_gt = np.array(Image.fromarray(img_gt).resize((self.hr_size, self.hr_size), Image.Resampling.BICUBIC))
        check_divisible(img_gt.shape[0], img_gt.shape[1], self.scale, f'{self.gt_root}: {self.keys[index]}')
        return img_gt, gt_path

    def degraded_sample(self, index, rng):
        """``(sample, record)``: the sample of ``index`` degraded with ``rng`` and what was applied."""
        img_gt, gt_path = self.load_hr(index)
        if self.opt.get('phase') == 'train' and self.opt.get('use_hflip', False) and rng.random() < 0.5:
            img_gt = img_gt[:, ::-1]  # drawn from rng (not BasicSR's augment): one seed, one sample
        height, width = img_gt.shape[:2]
        img_gt, img_lq, record = degrade_face(np.ascontiguousarray(img_gt), rng, self.degradation,
                                              out_size=(width // self.scale, height // self.scale))
        img_gt, img_lq = img2tensor([img_gt.astype(np.float32) / 255., img_lq], bgr2rgb=False, float32=True)
        return {'lq': img_lq, 'gt': img_gt, 'lq_path': gt_path, 'gt_path': gt_path}, record

    def __getitem__(self, index):
        return self.degraded_sample(index, self.generator_for(index))[0]
