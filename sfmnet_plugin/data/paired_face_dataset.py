"""``PairedFaceDataset``: HR faces with stored or on-the-fly LR faces, paired by name."""
import os

import numpy as np
import torch
from basicsr.data.transforms import augment, paired_random_crop
from basicsr.utils import FileClient, get_root_logger, img2tensor
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from sfmnet_plugin.data.downsample import check_divisible, check_downsampler, downsample
from sfmnet_plugin.data.face_augment import RandomResizedFaceCrop
from sfmnet_plugin.data.face_landmarks import (
    OFFICIAL_HEATMAP_SIGMA,
    check_points,
    draw_heatmaps,
    landmark_file_name,
    missing_landmark_file_name,
    read_landmark_file,
)
from sfmnet_plugin.data.image_check import check_images_at_start
from sfmnet_plugin.data.image_io import decode_rgb, list_image_files
from sfmnet_plugin.data.lmdb_reader import meta_info_problems, read_meta_info

_SHOWN = 5


def _examples(names):
    names = sorted(names)
    return ', '.join(names[:_SHOWN]) + (f' and {len(names) - _SHOWN} more' if len(names) > _SHOWN else '')


def resolve_backend(opt, roots):
    """('lmdb' | 'disk', extra FileClient arguments) from ``io_backend``, or from the paths when it is absent."""
    io_backend = dict(opt.get('io_backend') or {})
    backend = io_backend.pop('type', None)
    lmdb_roots = [str(root).endswith('.lmdb') for root in roots]
    if backend is None:
        if any(lmdb_roots) and not all(lmdb_roots):
            raise ValueError(f'dataroot_gt/dataroot_lq: {roots} mix LMDBs (*.lmdb) and folders; use one kind for both.')
        backend = 'lmdb' if all(lmdb_roots) else 'disk'
    elif backend == 'lmdb' and not all(lmdb_roots):
        raise ValueError(f'io_backend type lmdb needs dataroot_gt (and dataroot_lq) ending in .lmdb, got {roots}.')
    elif backend not in ('lmdb', 'disk'):
        raise ValueError(f'io_backend type {backend!r} is not supported; expected lmdb or disk.')
    return backend, io_backend


def keys_of_root(root, backend, skipped):
    """Key -> what the FileClient reads (the key itself for LMDBs, the file path for folders); image names in a folder
    that are no regular file (dangling links, FIFOs, devices) are appended to ``skipped`` as ``(path, reason)``.

    An LMDB whose ``meta_info.txt`` disagrees with what it stores is a ValueError here, not when an image is first
    drawn (hours into a run, or mid-benchmark).
    """
    if backend == 'lmdb':
        problems = meta_info_problems(root)
        if problems:
            raise ValueError(f'LMDB {root}: {"; ".join(problems)}. Check it with datasets_prep/verify_lmdb.py and '
                             'rebuild it.')
        return {key: key for key in read_meta_info(root)}
    return list_image_files(root, skipped=skipped)


def pair_by_name(gt_keys, lq_keys, gt_root, lq_root):
    """The sorted common keys; an error listing the names missing on either side if the sets differ."""
    only_gt, only_lq = set(gt_keys).difference(lq_keys), set(lq_keys).difference(gt_keys)
    if only_gt or only_lq:
        raise ValueError(f'HR {gt_root!r} and LR {lq_root!r} do not hold the same images: missing from LR: '
                         f'{_examples(only_gt) or "none"}; missing from HR: {_examples(only_lq) or "none"}.')
    return sorted(gt_keys)


def keys_from_list(list_file, available, root):
    """Keys named by ``meta_info_file`` (first token of each line, extension dropped), all of which must exist."""
    with open(list_file, encoding='utf-8') as f:
        keys = [line.split()[0].rsplit('.', 1)[0] for line in f if line.strip()]
    missing = [key for key in keys if key not in available]
    if missing:
        raise ValueError(f'meta_info_file {list_file!r}: {len(missing)} listed images are not in {root!r}: '
                         f'{_examples(missing)}.')
    return sorted(set(keys))


@DATASET_REGISTRY.register()
class PairedFaceDataset(data.Dataset):
    """HR/LR face pairs for face super-resolution, from LMDBs or image folders.

    Unlike BasicSR's ``PairedImageDataset`` it pairs HR and LR by *name* (never by sort order),
    returns whole images unless ``gt_size`` is set, converts any image mode to RGB, and can make
    the LR image on the fly with exactly the function the preparation scripts use.

    Options (``opt``):
        dataroot_gt (str): HR LMDB (``*.lmdb``; keys from its ``meta_info.txt``) or image folder
            (keys = file names without extension; png/jpg/jpeg/bmp/webp).
        dataroot_lq (str, optional): LR LMDB or folder with the same keys. Without it the LR is
            made from the HR by ``downsampler``.
        io_backend (dict, optional): ``{type: lmdb}`` or ``{type: disk}``; inferred from the paths
            when absent. Other keys go to BasicSR's FileClient.
        scale (int): HR size / LR size (BasicSR copies the global ``scale`` here).
        downsampler (str): ``pil_bicubic`` (default; the DIC/SFMNet/SPARNet protocol) or
            ``matlab_bicubic`` (BasicSR's ``imresize``), for on-the-fly LR.
        phase (str): augmentation and cropping happen only when it is ``train``.
        use_hflip, use_rot (bool): BasicSR flips/rotations; default False (SFMNet used none).
        random_resized_crop (dict, optional): SPARNet's augmentation (docs/fidelity.md §B5.1), e.g.
            ``{scale: [0.7, 1.0], ratio: [0.75, 1.3333], probability: 0.974}``: after the flip, a
            random box of the HR face is resized back to the face's size (PIL bicubic), and the LR
            is made from that HR by ``downsampler``, so it needs no ``dataroot_lq``. See
            :mod:`sfmnet_plugin.data.face_augment`.
        gt_size (int, optional): random HR patch size for training; default: whole images.
        meta_info_file (str, optional): use only the images it names (first token per line).
        check_images_at_start (bool): decode every image once when the dataset is built, so a
            corrupt image stops the run at once, naming it, instead of when it is first drawn
            (default False; costs one pass over the data, see docs/safety.md).
        landmarks (int, optional): 68: also return each face's landmarks and their heatmaps (DIC's training),
            read from ``landmarks_68.txt`` in ``dataroot_gt`` (written by the preparation tools with
            ``--landmarks 68``; format in :mod:`sfmnet_plugin.data.face_landmarks`). Every face must have a line
            there, unless ``skip_faces_without_landmarks``. Flips, rotations, random crops and
            ``random_resized_crop`` are refused with it (the landmarks would not follow the image; the official
            DIC recipe uses none).
        landmark_file (str, optional): another landmark file than ``<dataroot_gt>/landmarks_<n>.txt``.
        heatmap_sigma (float): the Gaussian's sigma in heatmap pixels (default 1, the official value).
        skip_faces_without_landmarks (bool): use only the faces that have landmarks (the preparation lists the
            others in ``landmarks_<n>_missing.txt``); default False: a face without landmarks is an error.

    Each sample: ``lq`` (3 x h x w) and ``gt`` (3 x H x W) float32 RGB in [0, 1], ``lq_path`` and
    ``gt_path`` (LMDB key or file path; ``lq_path`` is the HR's when the LR is made on the fly); with
    ``landmarks``: ``landmarks`` (n x 2 float32, HR pixels) and ``heatmap`` (n x H/4 x W/4 float32).
    """

    # The options above (besides the data loader's), checked before training starts (config.option_schema).
    option_keys = frozenset({'dataroot_gt', 'dataroot_lq', 'io_backend', 'scale', 'downsampler', 'phase', 'use_hflip',
                             'use_rot', 'gt_size', 'meta_info_file', 'random_resized_crop', 'check_images_at_start',
                             'landmarks', 'landmark_file', 'heatmap_sigma', 'skip_faces_without_landmarks'})

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        if 'scale' not in opt:
            raise KeyError('PairedFaceDataset: option "scale" is missing (BasicSR sets it from the global scale).')
        self.scale = int(opt['scale'])
        self.downsampler = opt.get('downsampler', 'pil_bicubic')
        check_downsampler(self.downsampler, 'PairedFaceDataset option downsampler')
        self.gt_root, self.lq_root = opt['dataroot_gt'], opt.get('dataroot_lq')
        self.random_resized_crop = None
        if opt.get('random_resized_crop'):
            self.random_resized_crop = RandomResizedFaceCrop.from_options(
                opt['random_resized_crop'], 'PairedFaceDataset option random_resized_crop')
            if self.lq_root:
                raise ValueError('PairedFaceDataset: random_resized_crop resizes the HR face, so a stored LR cannot '
                                 f'match it; remove dataroot_lq ({self.lq_root}) and the LR is made from the '
                                 'augmented HR by `downsampler`.')
        roots = [self.gt_root] + ([self.lq_root] if self.lq_root else [])
        self.backend, self.backend_kwargs = resolve_backend(opt, roots)

        self.skipped = []  # (path, reason) of the image names that are no regular file: said, never read
        self.gt_paths = keys_of_root(self.gt_root, self.backend, self.skipped)
        self.lq_paths = keys_of_root(self.lq_root, self.backend, self.skipped) if self.lq_root else None
        for path, reason in self.skipped:
            get_root_logger().warning(f'{path}: skipped, {reason}')
        self.keys = (pair_by_name(self.gt_paths, self.lq_paths, self.gt_root, self.lq_root) if self.lq_root
                     else sorted(self.gt_paths))
        if opt.get('meta_info_file'):
            self.keys = keys_from_list(opt['meta_info_file'], set(self.keys), self.gt_root)
        self.landmarks = self._read_landmarks() if opt.get('landmarks') else None
        if not self.keys:
            raise ValueError(f'dataroot_gt {self.gt_root!r} holds no images (png/jpg/jpeg/bmp/webp files, or LMDB '
                             'keys in meta_info.txt).')
        if self.backend == 'lmdb':
            self._check_lmdb_shapes()
        if opt.get('check_images_at_start'):
            self._check_images_decode()
        self.file_client = None  # opened lazily, in the DataLoader worker that reads

    def _read_landmarks(self):
        """``{key: n x 2 array}`` for the dataset's faces; drops or refuses the faces without landmarks."""
        points = check_points(self.opt['landmarks'], 'PairedFaceDataset option landmarks')
        moving = [name for name in ('use_hflip', 'use_rot', 'gt_size', 'random_resized_crop') if self.opt.get(name)]
        if moving:
            raise ValueError(f'PairedFaceDataset: landmarks cannot follow {", ".join(moving)} (the heatmaps would no '
                             'longer match the face); remove those options or the landmarks option.')
        path = self.opt.get('landmark_file') or os.path.join(self.gt_root, landmark_file_name(points))
        landmarks = read_landmark_file(path, points)
        without = [key for key in self.keys if key not in landmarks]
        if without and self.opt.get('skip_faces_without_landmarks', False):
            self.keys = [key for key in self.keys if key in landmarks]
        elif without:
            raise ValueError(f'{path}: no landmarks for {len(without)} of {len(self.keys)} faces '
                             f'({_examples(without)}); the preparation lists them in '
                             f'{missing_landmark_file_name(points)}. Set skip_faces_without_landmarks: true to '
                             'train on the others.')
        return {key: landmarks[key] for key in self.keys}

    def _check_images_decode(self):
        roots = [(self.gt_root, self.backend, [self.gt_paths[key] for key in self.keys])]
        if self.lq_root:
            roots.append((self.lq_root, self.backend, [self.lq_paths[key] for key in self.keys]))
        workers = max(1, min(int(self.opt.get('num_worker_per_gpu') or 1), os.cpu_count() or 1))
        check_images_at_start(self.opt.get('name', self.gt_root), roots, workers)

    def _check_lmdb_shapes(self):
        """Fail at start-up, naming the keys, if stored sizes do not fit the scale."""
        gt_shapes = read_meta_info(self.gt_root)
        for key in self.keys:
            check_divisible(gt_shapes[key][0], gt_shapes[key][1], self.scale, f'{self.gt_root}: {key}')
        if self.lq_root:
            lq_shapes = read_meta_info(self.lq_root)
            wrong = [key for key in self.keys
                     if (lq_shapes[key][0] * self.scale, lq_shapes[key][1] * self.scale) != gt_shapes[key][:2]]
            if wrong:
                raise ValueError(f'{self.lq_root}: LR size x scale {self.scale} != HR size in {self.gt_root} for '
                                 f'{_examples(wrong)} (e.g. HR {gt_shapes[wrong[0]]}, LR {lq_shapes[wrong[0]]}).')

    def _file_client(self):
        if self.file_client is None:
            if self.backend == 'lmdb':
                db_paths, client_keys = [self.gt_root], ['gt']
                if self.lq_root:
                    db_paths.append(self.lq_root)
                    client_keys.append('lq')
                self.file_client = FileClient('lmdb', db_paths=db_paths, client_keys=client_keys, **self.backend_kwargs)
            else:
                self.file_client = FileClient('disk', **self.backend_kwargs)
        return self.file_client

    def _load(self, path, role, root):
        content = self._file_client().get(path, role)
        if content is None:
            raise KeyError(f'{root}: key {path!r} is listed in meta_info.txt but not stored in the LMDB.')
        return decode_rgb(content, path if self.backend == 'disk' else f'{root}: {path}')[0]

    def __getitem__(self, index):
        key = self.keys[index]
        gt_path = self.gt_paths[key]
        img_gt = self._load(gt_path, 'gt', self.gt_root)
        height, width = img_gt.shape[:2]
        check_divisible(height, width, self.scale, f'{self.gt_root}: {key}')
        train = self.opt.get('phase') == 'train'
        if train and self.random_resized_crop:
            # SPARNet's order (§B5.1): flip, random resized crop, then the LR from that HR.
            img_gt = augment(img_gt, self.opt.get('use_hflip', False), self.opt.get('use_rot', False))
            img_gt = self.random_resized_crop(img_gt)
        if self.lq_root:
            lq_path = self.lq_paths[key]
            img_lq = self._load(lq_path, 'lq', self.lq_root)
            if img_lq.shape[:2] != (height // self.scale, width // self.scale):
                raise ValueError(f'{key}: LR {lq_path} is {img_lq.shape[1]}x{img_lq.shape[0]} but HR {gt_path} is '
                                 f'{width}x{height}; expected the LR to be 1/{self.scale} of it.')
        else:
            lq_path = gt_path
            img_lq = downsample(img_gt, self.scale, self.downsampler, name=f'{self.gt_root}: {key}')

        if train:
            if self.opt.get('gt_size'):
                img_gt, img_lq = paired_random_crop(img_gt, img_lq, self.opt['gt_size'], self.scale, gt_path)
            if not self.random_resized_crop:
                img_gt, img_lq = augment([img_gt, img_lq], self.opt.get('use_hflip', False),
                                         self.opt.get('use_rot', False))

        sample = {'gt_path': gt_path, 'lq_path': lq_path}
        if self.landmarks is not None:
            points = self.landmarks[key]
            sample['landmarks'] = torch.from_numpy(points.astype(np.float32))
            sample['heatmap'] = torch.from_numpy(draw_heatmaps(
                points, img_gt.shape[:2], float(self.opt.get('heatmap_sigma', OFFICIAL_HEATMAP_SIGMA))))
        sample['gt'], sample['lq'] = img2tensor([img_gt.astype(np.float32) / 255., img_lq.astype(np.float32) / 255.],
                                                bgr2rgb=False, float32=True)
        return sample

    def __len__(self):
        return len(self.keys)
