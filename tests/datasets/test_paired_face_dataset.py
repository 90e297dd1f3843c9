"""PairedFaceDataset over LMDBs and folders written by the preparation scripts."""
import numpy as np
import pytest
import torch
from basicsr.data import build_dataloader, build_dataset
from basicsr.data.data_sampler import EnlargedSampler
from basicsr.data.prefetch_dataloader import CPUPrefetcher
from basicsr.utils.registry import DATASET_REGISTRY
from PIL import Image
from torch.utils.data import DataLoader

from sfmnet_plugin.data.paired_face_dataset import PairedFaceDataset
from sfmnet_plugin.prep.lmdb_writer import LmdbWriter
from sfmnet_cli import prepare_helen


@pytest.fixture(scope='session')
def aligned_faces(astronaut, grace_hopper, smooth_noise):
    def aligned_faces():
        """Eight 128 x 128 faces: two real photos, their mirror images, a grey one and generated ones."""
        faces = {'astronaut': astronaut()[60:316, 100:356], 'grace': grace_hopper()[90:390, 110:410]}
        faces = {name: np.array(Image.fromarray(face).resize((128, 128), Image.BICUBIC)) for name, face in faces.items()}
        faces.update({f'{name}_mirror': face[:, ::-1].copy() for name, face in list(faces.items())})
        faces['grey'] = np.repeat(faces['grace'].mean(axis=2).astype(np.uint8)[:, :, None], 3, axis=2)
        faces.update({f'noise{index}': smooth_noise(128, 128, seed=index) for index in range(3)})
        return faces

    return aligned_faces


@pytest.fixture(scope='module')
def prepared(tmp_path_factory, aligned_faces):
    """HR.lmdb, LR_x4.lmdb, LR_x8.lmdb and the PNG folders, made by prepare_helen --from-aligned."""
    root, aligned = tmp_path_factory.mktemp('dataset'), tmp_path_factory.mktemp('aligned')
    for name, face in aligned_faces().items():
        Image.fromarray(face).save(aligned / f'{name}.png')
    for downsampler in ('pil_bicubic', 'matlab_bicubic'):
        assert prepare_helen.main(['--from-aligned', str(aligned), '--split-name', downsampler,
                                   '--out', str(root), '--scales', '4', '8', '--downsampler', downsampler,
                                   '--save-png', '--workers', '1']) == 0
    return root


def dataset(**opt):
    return PairedFaceDataset({'scale': 8, 'phase': 'val', **{key: str(value) for key, value in opt.items()}})


def assert_same_samples(first, second, compare_paths=False):
    assert len(first) == len(second) > 0
    for index in range(len(first)):
        a, b = first[index], second[index]
        assert torch.equal(a['gt'], b['gt']) and torch.equal(a['lq'], b['lq']), index
        if compare_paths:
            assert (a['gt_path'], a['lq_path']) == (b['gt_path'], b['lq_path'])


def test_samples_are_whole_rgb_float_images_with_their_keys(prepared, aligned_faces):
    split = prepared / 'pil_bicubic'
    data = dataset(dataroot_gt=split / 'HR.lmdb', dataroot_lq=split / 'LR_x8.lmdb')
    assert len(data) == 8
    sample = data[data.keys.index('astronaut')]
    assert sample['gt'].shape == (3, 128, 128) and sample['lq'].shape == (3, 16, 16)
    assert sample['gt'].dtype == sample['lq'].dtype == torch.float32
    assert 0 <= sample['gt'].min() and sample['gt'].max() <= 1
    assert (sample['gt_path'], sample['lq_path']) == ('astronaut', 'astronaut')
    expected = aligned_faces()['astronaut']
    assert torch.equal(sample['gt'], torch.from_numpy(expected.transpose(2, 0, 1).astype(np.float32) / 255.))


def test_lmdb_and_png_folders_give_identical_pairs(prepared):
    split = prepared / 'pil_bicubic'
    for lr_lmdb, lr_folder, scale in (('LR_x8.lmdb', 'LR_bicubic', 8), ('LR_x4.lmdb', 'LR_x4_bicubic', 4)):
        from_lmdb = PairedFaceDataset({'scale': scale, 'dataroot_gt': str(split / 'HR.lmdb'),
                                       'dataroot_lq': str(split / lr_lmdb), 'io_backend': {'type': 'lmdb'}})
        from_png = PairedFaceDataset({'scale': scale, 'dataroot_gt': str(split / 'HR'),
                                      'dataroot_lq': str(split / lr_folder), 'io_backend': {'type': 'disk'}})
        assert from_lmdb.keys == from_png.keys
        assert from_png[0]['gt_path'].endswith(f'HR/{from_png.keys[0]}.png')
        assert_same_samples(from_lmdb, from_png)


@pytest.mark.parametrize('downsampler', ['pil_bicubic', 'matlab_bicubic'])
def test_on_the_fly_lr_equals_the_stored_lr(prepared, downsampler):
    split = prepared / downsampler
    stored = dataset(dataroot_gt=split / 'HR.lmdb', dataroot_lq=split / 'LR_x8.lmdb')
    on_the_fly = dataset(dataroot_gt=split / 'HR.lmdb', downsampler=downsampler)
    assert_same_samples(stored, on_the_fly, compare_paths=True)
    from_folder = dataset(dataroot_gt=split / 'HR', downsampler=downsampler)
    assert_same_samples(stored, from_folder)


def test_the_two_downsamplers_differ(prepared):
    pil = dataset(dataroot_gt=prepared / 'pil_bicubic' / 'HR.lmdb')
    matlab = dataset(dataroot_gt=prepared / 'pil_bicubic' / 'HR.lmdb', downsampler='matlab_bicubic')
    assert not torch.equal(pil[0]['lq'], matlab[0]['lq'])
    assert (pil[0]['lq'] - matlab[0]['lq']).abs().mean() < 0.02


def test_pairs_by_key_not_by_stored_order(prepared, tmp_path):
    """An LR LMDB written in reverse key order still pairs every HR with its own LR."""
    split = prepared / 'pil_bicubic'
    stored = dataset(dataroot_gt=split / 'HR.lmdb', dataroot_lq=split / 'LR_x8.lmdb')
    reversed_lr = tmp_path / 'LR_x8.lmdb'
    with LmdbWriter(str(reversed_lr)) as writer:
        for key in reversed(stored.keys):
            writer.put(key, (split / 'LR_bicubic' / f'{key}.png').read_bytes(), (16, 16, 3))
    assert_same_samples(stored, dataset(dataroot_gt=split / 'HR.lmdb', dataroot_lq=reversed_lr), compare_paths=True)


def test_mismatched_names_are_listed_on_both_sides(tmp_path, smooth_noise):
    for folder, names, size in (('hr', ('a', 'b', 'c'), 32), ('lr', ('a', 'b', 'd'), 4)):
        (tmp_path / folder).mkdir()
        for name in names:
            Image.fromarray(smooth_noise(size, size, seed=1)).save(tmp_path / folder / f'{name}.png')
    with pytest.raises(ValueError, match=r'missing from LR: c; missing from HR: d'):
        dataset(dataroot_gt=tmp_path / 'hr', dataroot_lq=tmp_path / 'lr')


def test_odd_modes_become_rgb_and_bad_sizes_name_the_file(tmp_path, smooth_noise, aligned_faces):
    face = aligned_faces()['astronaut']
    Image.fromarray(face).convert('L').save(tmp_path / 'grey.png')
    Image.fromarray(np.dstack([face, np.full(face.shape[:2], 255, np.uint8)])).save(tmp_path / 'rgba.png')
    Image.fromarray(smooth_noise(130, 128, seed=2)).save(tmp_path / 'odd.jpg')
    data = dataset(dataroot_gt=tmp_path)
    assert data.keys == ['grey', 'odd', 'rgba']
    grey = data[0]['gt']
    assert grey.shape == (3, 128, 128) and torch.equal(grey[0], grey[2])
    assert torch.equal(data[2]['gt'], torch.from_numpy(face.transpose(2, 0, 1) / np.float32(255)))
    with pytest.raises(ValueError, match=r'odd: HR size 130x128 \(h x w\) is not divisible by the scale 8'):
        data[1]


def test_lmdb_sizes_are_checked_at_start(prepared):
    split = prepared / 'pil_bicubic'
    with pytest.raises(ValueError, match=r'LR size x scale 4 != HR size'):
        PairedFaceDataset({'scale': 4, 'dataroot_gt': str(split / 'HR.lmdb'), 'dataroot_lq': str(split / 'LR_x8.lmdb')})
    with pytest.raises(ValueError, match=r'not divisible by the scale 3'):
        PairedFaceDataset({'scale': 3, 'dataroot_gt': str(split / 'HR.lmdb')})


@pytest.mark.parametrize('opt, message', [
    ({'downsampler': 'cv2_cubic'}, 'downsampler: unknown downsampler'),
    ({'io_backend': {'type': 'lmdb'}, 'dataroot_gt': 'HR'}, 'io_backend type lmdb needs'),
    ({'io_backend': {'type': 'memcached'}}, "io_backend type 'memcached' is not supported"),
    ({'dataroot_lq': 'LR_bicubic'}, 'mix LMDBs'),
])
def test_bad_options_say_which_option(prepared, opt, message):
    split = prepared / 'pil_bicubic'
    full = {'scale': 8, 'dataroot_gt': str(split / 'HR.lmdb')}
    full.update({key: str(split / value) if key.startswith('dataroot') else value for key, value in opt.items()})
    with pytest.raises(ValueError, match=message):
        PairedFaceDataset(full)


def test_meta_info_file_selects_a_subset(prepared, tmp_path):
    (tmp_path / 'subset.txt').write_text('grace.png (128,128,3) 1\nnoise1\n')
    data = dataset(dataroot_gt=prepared / 'pil_bicubic' / 'HR.lmdb', meta_info_file=tmp_path / 'subset.txt')
    assert data.keys == ['grace', 'noise1']
    (tmp_path / 'missing.txt').write_text('grace\nnobody\n')
    with pytest.raises(ValueError, match=r'missing.txt.*nobody'):
        dataset(dataroot_gt=prepared / 'pil_bicubic' / 'HR.lmdb', meta_info_file=tmp_path / 'missing.txt')


def test_training_crops_and_flips_only_when_asked(prepared):
    split = prepared / 'pil_bicubic'
    opt = {'scale': 8, 'dataroot_gt': str(split / 'HR.lmdb'), 'dataroot_lq': str(split / 'LR_x8.lmdb'),
           'phase': 'train'}
    whole = PairedFaceDataset(opt)
    plain = PairedFaceDataset(dict(opt, phase='val'))
    assert_same_samples(whole, plain)  # no augmentation and no cropping by default
    cropped = PairedFaceDataset(dict(opt, gt_size=64, use_hflip=True, use_rot=True))
    sample = cropped[0]
    assert sample['gt'].shape == (3, 64, 64) and sample['lq'].shape == (3, 8, 8)
    assert PairedFaceDataset(dict(opt, gt_size=64, phase='val'))[0]['gt'].shape == (3, 128, 128)


def test_two_datasets_on_one_lmdb_with_two_dataloader_workers(prepared):
    split = prepared / 'pil_bicubic'
    opt = {'dataroot_gt': split / 'HR.lmdb', 'dataroot_lq': split / 'LR_x8.lmdb'}
    train, val = dataset(**opt), dataset(**opt)
    expected = [val[index] for index in range(len(val))]  # opens the environments in this process first
    for data in (train, val):
        loader = DataLoader(data, batch_size=3, num_workers=2, multiprocessing_context='fork')
        batches = list(loader)
        assert [path for batch in batches for path in batch['gt_path']] == [sample['gt_path'] for sample in expected]
        assert torch.equal(torch.cat([batch['gt'] for batch in batches]), torch.stack([s['gt'] for s in expected]))
        assert torch.equal(torch.cat([batch['lq'] for batch in batches]), torch.stack([s['lq'] for s in expected]))


def test_basicsr_builds_it_with_enlarged_sampler_and_cpu_prefetcher(prepared):
    assert DATASET_REGISTRY.get('PairedFaceDataset') is PairedFaceDataset
    split = prepared / 'pil_bicubic'
    dataset_opt = {'name': 'faces', 'type': 'PairedFaceDataset', 'phase': 'train', 'scale': 8,
                   'dataroot_gt': str(split / 'HR.lmdb'), 'dataroot_lq': str(split / 'LR_x8.lmdb'),
                   'io_backend': {'type': 'lmdb'}, 'num_worker_per_gpu': 2, 'batch_size_per_gpu': 2,
                   'dataset_enlarge_ratio': 2, 'prefetch_mode': 'cpu', 'num_prefetch_queue': 2}
    data = build_dataset(dataset_opt)
    # The two ranks of a 2-process DDP run share the enlarged epoch: every image twice in all.
    ranks = [list(EnlargedSampler(data, num_replicas=2, rank=rank, ratio=2)) for rank in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == len(data)
    assert sorted(ranks[0] + ranks[1]) == sorted(2 * list(range(len(data))))
    sampler = EnlargedSampler(data, num_replicas=1, rank=0, ratio=2)
    loader = build_dataloader(data, dataset_opt, num_gpu=0, dist=False, sampler=sampler, seed=0)
    prefetcher = CPUPrefetcher(loader)
    batches = []
    batch = prefetcher.next()
    while batch is not None:
        batches.append(batch)
        batch = prefetcher.next()
    assert len(batches) == 2 * len(data) // 2
    assert batches[0]['lq'].shape == (2, 3, 16, 16) and batches[0]['gt'].shape == (2, 3, 128, 128)


# ------------------------------------------------------------------ SPARNet's random resized crop

SPARNET_CROP = {'scale': [0.7, 1.0], 'ratio': [0.75, 1.3333333], 'probability': 0.974}


def sparnet_dataset(prepared, **crop):
    return PairedFaceDataset({'scale': 8, 'phase': 'train', 'use_hflip': True,
                              'dataroot_gt': str(prepared / 'pil_bicubic' / 'HR.lmdb'),
                              'random_resized_crop': {**SPARNET_CROP, **crop}})


def seeded_sample(data, index, seed):
    import random

    random.seed(seed)
    torch.manual_seed(seed)
    return data[index]


def test_random_resized_crop_makes_the_lr_from_the_augmented_hr(prepared):
    data = sparnet_dataset(prepared, probability=1.0)
    plain = dataset(dataroot_gt=prepared / 'pil_bicubic' / 'HR.lmdb')
    for index in range(len(data)):
        sample = seeded_sample(data, index, seed=index)
        assert sample['gt'].shape == (3, 128, 128) and sample['lq'].shape == (3, 16, 16)
        assert not torch.equal(sample['gt'], plain[index]['gt'])  # the face was cropped and resized
        hr = (sample['gt'].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        lr = (sample['lq'].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        assert np.array_equal(lr, np.array(Image.fromarray(hr).resize((16, 16), Image.BICUBIC)))


def test_random_resized_crop_is_reproducible_from_the_seed(prepared):
    data = sparnet_dataset(prepared)
    first, again, other = (seeded_sample(data, 0, seed) for seed in (3, 3, 4))
    assert torch.equal(first['gt'], again['gt']) and torch.equal(first['lq'], again['lq'])
    assert not torch.equal(first['gt'], other['gt'])


def test_random_resized_crop_cuts_the_drawn_box_and_resizes_it_with_pil_bicubic(prepared, monkeypatch, aligned_faces):
    from torchvision.transforms import RandomResizedCrop

    monkeypatch.setattr(RandomResizedCrop, 'get_params', staticmethod(lambda image, scale, ratio: (10, 20, 96, 80)))
    data = PairedFaceDataset({'scale': 8, 'phase': 'train', 'dataroot_gt': str(prepared / 'pil_bicubic' / 'HR.lmdb'),
                              'random_resized_crop': {'probability': 1.0}})
    face = aligned_faces()['astronaut']
    index = data.keys.index('astronaut')
    expected = Image.fromarray(face).crop((20, 10, 100, 106)).resize((128, 128), Image.BICUBIC)
    assert np.array_equal((data[index]['gt'].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8),
                          np.array(expected))


def test_random_resized_crop_probability_and_validation_phase(prepared):
    plain = dataset(dataroot_gt=prepared / 'pil_bicubic' / 'HR.lmdb')[0]
    never = sparnet_dataset(prepared, probability=0.0)
    never.opt['use_hflip'] = False
    assert torch.equal(seeded_sample(never, 0, 0)['gt'], plain['gt'])
    half = sparnet_dataset(prepared, probability=0.5)
    half.opt['use_hflip'] = False
    cropped = sum(not torch.equal(seeded_sample(half, 0, seed)['gt'], plain['gt']) for seed in range(200))
    assert 70 < cropped < 130  # binomial(200, 0.5): mean 100, sd 7
    validation = sparnet_dataset(prepared)
    validation.opt['phase'] = 'val'
    assert torch.equal(validation[0]['gt'], plain['gt'])


@pytest.mark.parametrize('crop, message', [
    ({'scale': [0.7, 1.2]}, r'scale.*cannot exceed 1'),
    ({'ratio': [1.3, 0.7]}, r'ratio.*low <= high'),
    ({'probability': 2}, r'probability.*\[0, 1\]'),
    ({'zoom': 1}, r"unknown keys \['zoom'\]"),
])
def test_bad_random_resized_crop_options_are_named(prepared, crop, message):
    with pytest.raises(ValueError, match=message):
        sparnet_dataset(prepared, **crop)


def test_random_resized_crop_refuses_a_stored_lr(prepared):
    with pytest.raises(ValueError, match='remove dataroot_lq'):
        PairedFaceDataset({'scale': 8, 'phase': 'train', 'dataroot_gt': str(prepared / 'pil_bicubic' / 'HR.lmdb'),
                           'dataroot_lq': str(prepared / 'pil_bicubic' / 'LR_x8.lmdb'),
                           'random_resized_crop': SPARNET_CROP})
