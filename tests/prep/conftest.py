"""Fixtures of the preparation tests: miniature CelebA and Helen releases, in the official file formats, built from
real public-domain photos (the root conftest.py's ``astronaut`` and ``grace_hopper``).

The photos are ``skimage.data.astronaut()`` and matplotlib's ``grace_hopper.jpg`` (both public
domain), with 5 landmarks located by eye; they are placed and scaled inside larger canvases so
the landmark coordinates of every generated file are known exactly. The releases also contain
the awkward cases real downloads have: grey, RGBA and CMYK files, a truncated JPEG and a face
too small to use.
"""
import io
import os
import subprocess
import sys
from dataclasses import dataclass, field
from functools import partial
from os import path as osp
from types import SimpleNamespace

import lmdb
import numpy as np
import pytest
from PIL import Image

LANDMARK_HEADER = ('lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y '
                   'leftmouth_x leftmouth_y rightmouth_x rightmouth_y')
HELEN_POINTS = 194


def synthetic_face_points(cx, cy, size):
    """Plausible 5 landmarks of a face of about ``size`` pixels centred at (cx, cy)."""
    d = size / 4
    return ((round(cx - d), round(cy - d)), (round(cx + d), round(cy - d)), (round(cx), round(cy)),
            (round(cx - 0.8 * d), round(cy + d)), (round(cx + 0.8 * d), round(cy + d)))


def jpeg_bytes(rgb_or_image, quality=95):
    image = rgb_or_image if isinstance(rgb_or_image, Image.Image) else Image.fromarray(rgb_or_image)
    buffer = io.BytesIO()
    image.save(buffer, format='JPEG', quality=quality)
    return buffer.getvalue()


def _png_bytes(image):
    buffer = io.BytesIO()
    image.save(buffer, format='PNG')
    return buffer.getvalue()


def _rgba_with_transparent_border(rgb, border=40):
    """The photo as RGBA whose outer ``border`` pixels are fully transparent (stored colour: black)."""
    alpha = np.zeros(rgb.shape[:2], dtype=np.uint8)
    alpha[border:-border, border:-border] = 255
    rgba = np.dstack([rgb, alpha])
    rgba[alpha == 0, :3] = 0
    return Image.fromarray(rgba)


def write_counted_table(path, header, rows):
    """A CelebA annotation table: count line, header line, then ``name v1 v2 ...`` rows."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(f'{len(rows)}\n{header}\n')
        for name, values in rows.items():
            f.write(name + ' ' + ' '.join(f'{int(v):4d}' for v in values) + '\n')


@dataclass
class CelebaRelease:
    """A miniature CelebA release and what a correct preparation must make of it."""
    root: str
    partition: dict  # split -> sorted image names
    landmarks: dict = field(default_factory=dict)  # wild image name -> 5 points
    converted: dict = field(default_factory=dict)  # image name -> PIL mode converted to RGB
    unreadable: tuple = ()
    too_small: tuple = ()

    def expected_keys(self, split, skipped=None):
        skipped = set(self.unreadable + self.too_small) if skipped is None else set(skipped)
        return sorted(osp.splitext(name)[0] for name in self.partition[split] if name not in skipped)


def _make_celeba_release(photos, root):
    """Write ``img_celeba/``, ``img_align_celeba/``, ``Anno/`` and ``Eval/`` of a 12-image CelebA."""
    astro, grace = photos.astronaut(), photos.grace_hopper()
    wild = {
        # the same photo at two offsets that are multiples of the JPEG block size: identical crops expected
        '000001.jpg': photos.place(astro, photos.astronaut_points, (704, 640), (64, 48), seed=1),
        '000003.jpg': photos.place(astro, photos.astronaut_points, (800, 720), (208, 160), seed=3),
        '000002.jpg': photos.place(grace, photos.grace_hopper_points, (600, 560), (100, 50), scale=0.75, seed=2),
    }
    files = {name: jpeg_bytes(canvas) for name, (canvas, _) in wild.items()}
    landmarks = {name: points for name, (_, points) in wild.items()}

    grey, points = photos.place(grace, photos.grace_hopper_points, (560, 640), (20, 30), seed=4)
    files['000004.jpg'] = jpeg_bytes(Image.fromarray(grey).convert('L'))
    landmarks['000004.jpg'] = points
    rgba, points = photos.place(astro, photos.astronaut_points, (512, 512), (0, 0), seed=5)
    files['000005.jpg'] = _png_bytes(_rgba_with_transparent_border(rgba))  # a PNG under a .jpg name, as it happens
    landmarks['000005.jpg'] = points
    cmyk, points = photos.place(grace, photos.grace_hopper_points, (520, 600), (0, 0), seed=6)
    files['000006.jpg'] = jpeg_bytes(Image.fromarray(cmyk).convert('CMYK'))
    landmarks['000006.jpg'] = points
    truncated, points = photos.place(astro, photos.astronaut_points, (600, 600), (32, 32), seed=7)
    whole = jpeg_bytes(truncated)
    files['000007.jpg'] = whole[:len(whole) // 2]
    landmarks['000007.jpg'] = points
    files['000008.jpg'] = jpeg_bytes(photos.smooth_noise(40, 36, seed=8))
    landmarks['000008.jpg'] = synthetic_face_points(18, 20, 16)  # a 16 px face: below --min-crop-size
    for index in range(9, 13):
        height, width = 300 + 20 * index, 260 + 16 * index
        files[f'{index:06d}.jpg'] = jpeg_bytes(photos.smooth_noise(height, width, seed=index))
        landmarks[f'{index:06d}.jpg'] = synthetic_face_points(width / 2, height / 2, 110 + index)

    for name, content in files.items():
        os.makedirs(osp.join(root, 'img_celeba'), exist_ok=True)
        with open(osp.join(root, 'img_celeba', name), 'wb') as f:
            f.write(content)
    write_counted_table(osp.join(root, 'Anno', 'list_landmarks_celeba.txt'), LANDMARK_HEADER,
                        {name: [v for point in points for v in point] for name, points in sorted(landmarks.items())})
    boxes = {}
    for name, points in sorted(landmarks.items()):
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        side = 2 * (max(ys) - min(ys)) + 10
        boxes[name] = (min(xs) - side // 4, min(ys) - side // 3, side, round(side * 1.3))
    write_counted_table(osp.join(root, 'Anno', 'list_bbox_celeba.txt'), 'image_id x_1 y_1 width height', boxes)

    _write_aligned_images(photos, osp.join(root, 'img_align_celeba'), files)
    write_counted_table(osp.join(root, 'Anno', 'list_landmarks_align_celeba.txt'), LANDMARK_HEADER,
                        {name: (70, 112, 108, 112, 89, 134, 73, 152, 105, 152) for name in sorted(files)})

    partition = {'train': ['000001.jpg', '000002.jpg', '000004.jpg', '000005.jpg', '000006.jpg', '000007.jpg',
                           '000008.jpg', '000009.jpg'],
                 'val': ['000010.jpg'],
                 'test': ['000003.jpg', '000011.jpg', '000012.jpg']}
    os.makedirs(osp.join(root, 'Eval'), exist_ok=True)
    with open(osp.join(root, 'Eval', 'list_eval_partition.txt'), 'w') as f:
        split_ids = {name: split_id for split_id, split in enumerate(('train', 'val', 'test'))
                     for name in partition[split]}
        f.writelines(f'{name} {split_ids[name]}\n' for name in sorted(split_ids))
    return CelebaRelease(root, partition, landmarks, converted={'000004.jpg': 'L', '000005.jpg': 'RGBA',
                                                                 '000006.jpg': 'CMYK'},
                         unreadable=('000007.jpg',), too_small=('000008.jpg',))


def _write_aligned_images(photos, folder, wild_files):
    """178 x 218 images like img_align_celeba: real faces resized, the special cases kept special."""
    os.makedirs(folder, exist_ok=True)
    faces = {'000001.jpg': photos.astronaut()[40:290, 120:324], '000003.jpg': photos.astronaut()[30:280, 110:314],
             '000002.jpg': photos.grace_hopper()[100:380, 150:380]}
    for name, content in wild_files.items():
        if name in faces:
            content = jpeg_bytes(Image.fromarray(faces[name]).resize((178, 218), Image.Resampling.BICUBIC))
        elif name == '000008.jpg':
            content = jpeg_bytes(photos.smooth_noise(120, 100, seed=80))  # smaller than any centre crop
        elif name not in ('000004.jpg', '000005.jpg', '000006.jpg', '000007.jpg'):
            content = jpeg_bytes(photos.smooth_noise(218, 178, seed=int(name[:6])))
        else:  # grey / RGBA / CMYK / truncated: the same kind of file at the aligned size
            content = _odd_aligned_file(name, wild_files['000001.jpg'])
        with open(osp.join(folder, name), 'wb') as f:
            f.write(content)


def _odd_aligned_file(name, photo_jpeg):
    with Image.open(io.BytesIO(photo_jpeg)) as source:
        small = source.resize((178, 218))
    if name == '000004.jpg':
        return jpeg_bytes(small.convert('L'))
    if name == '000005.jpg':
        return _png_bytes(_rgba_with_transparent_border(np.array(small), 20))
    if name == '000006.jpg':
        return jpeg_bytes(small.convert('CMYK'))
    return jpeg_bytes(small)[:2000]  # truncated


def _make_many_celeba_images(photos, root, count, size=(1024, 900)):
    """A CelebA release of ``count`` copies of one large photo, all in the train split (for timing/killing)."""
    canvas, points = photos.place(photos.astronaut(), photos.astronaut_points, size, (128, 96), scale=1.5, seed=11)
    names = [f'{index:06d}.jpg' for index in range(1, count + 1)]
    folder = osp.join(root, 'img_celeba')
    os.makedirs(folder, exist_ok=True)
    with open(osp.join(folder, names[0]), 'wb') as f:
        f.write(jpeg_bytes(canvas))
    for name in names[1:]:
        os.link(osp.join(folder, names[0]), osp.join(folder, name))  # copies without the disk space
    write_counted_table(osp.join(root, 'Anno', 'list_landmarks_celeba.txt'), LANDMARK_HEADER,
                        {name: [v for point in points for v in point] for name in names})
    os.makedirs(osp.join(root, 'Eval'), exist_ok=True)
    with open(osp.join(root, 'Eval', 'list_eval_partition.txt'), 'w') as f:
        f.writelines(f'{name} 0\n' for name in names)
    return names


def helen_points_around(cx, cy, half_width, half_height):
    """194 points on an ellipse (Helen's contour-style annotation) whose box is known exactly."""
    angles = np.linspace(0, 2 * np.pi, HELEN_POINTS, endpoint=False)
    points = np.stack([cx + half_width * np.cos(angles), cy + half_height * np.sin(angles)], axis=1)
    return [(round(x, 3), round(y, 3)) for x, y in points]


def _write_helen_annotation(path, name, points):
    with open(path, 'w') as f:
        f.write(f'{name}\n')
        f.writelines(f'{x} , {y}\n' for x, y in points)


@dataclass
class HelenRelease:
    images: list  # image folders
    annotations: str
    points: dict  # image name -> 194 points
    test_list: str
    test_names: tuple
    train_names: tuple


def _make_helen_release(photos, root):
    """Helen photos in two part folders, one 194-point annotation file per photo, and a test list."""
    astro, grace = photos.astronaut(), photos.grace_hopper()
    photos = {
        '100032540_1': (astro, helen_points_around(225, 128, 48, 62)),
        '2908549_1': (grace, helen_points_around(265, 235, 85, 105)),
        '10405146_1': (photos.smooth_noise(420, 380, seed=21), helen_points_around(190, 200, 70, 80)),
        '11564757_2': (photos.smooth_noise(360, 500, seed=22), helen_points_around(260, 170, 60, 75)),
    }
    parts = [osp.join(root, 'helen_1'), osp.join(root, 'helen_2')]
    annotations = osp.join(root, 'annotation')
    for folder in parts + [annotations]:
        os.makedirs(folder, exist_ok=True)
    for index, (name, (rgb, points)) in enumerate(sorted(photos.items()), start=1):
        with open(osp.join(parts[index % 2], f'{name}.jpg'), 'wb') as f:
            f.write(jpeg_bytes(rgb))
        _write_helen_annotation(osp.join(annotations, f'{index}.txt'), name, points)
    test_list = osp.join(root, 'helen_test.txt')
    with open(test_list, 'w') as f:
        f.write('2908549_1\n11564757_2.jpg\n')
    return HelenRelease(parts, annotations, {name: points for name, (_, points) in photos.items()}, test_list,
                        ('11564757_2', '2908549_1'), ('100032540_1', '10405146_1'))


REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _run_script(name, *args, cwd=None, timeout=180):
    """Run ``datasets_prep/<name>.py`` with this interpreter; returns the CompletedProcess (text output)."""
    command = [sys.executable, osp.join(REPO_ROOT, 'datasets_prep', f'{name}.py'), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=timeout)


def _read_lmdb_images(lmdb_path):
    """Key -> decoded array of every value in an LMDB, read with a private (closed) environment.

    A private handle, not the plugin's shared one, so a test can rebuild the same path later.
    """
    env = lmdb.open(str(lmdb_path), readonly=True, lock=False)
    try:
        with env.begin() as txn:
            return {key.decode(): np.array(Image.open(io.BytesIO(value))) for key, value in txn.cursor()}
    finally:
        env.close()


def _read_lines(path):
    with open(path) as f:
        return f.read().splitlines()


def _pil_downsample(hr, scale):
    """The DIC/SFMNet LR, written out independently of the plugin: PIL bicubic to 1/scale."""
    return np.array(Image.fromarray(hr).resize((hr.shape[1] // scale, hr.shape[0] // scale), Image.BICUBIC))


@pytest.fixture(scope='session')
def photos(astronaut, grace_hopper, astronaut_points, grace_hopper_points, smooth_noise, place):
    """The public-domain photos and their landmarks, for the release builders."""
    return SimpleNamespace(astronaut=astronaut, grace_hopper=grace_hopper, astronaut_points=astronaut_points,
                           grace_hopper_points=grace_hopper_points, smooth_noise=smooth_noise, place=place)


@pytest.fixture(scope='session')
def make_celeba_release(photos):
    """``make_celeba_release(root)``: see :func:`_make_celeba_release`."""
    return partial(_make_celeba_release, photos)


@pytest.fixture(scope='session')
def make_many_celeba_images(photos):
    """``make_many_celeba_images(root, count, size=(1024, 900))``: see :func:`_make_many_celeba_images`."""
    return partial(_make_many_celeba_images, photos)


@pytest.fixture(scope='session')
def make_helen_release(photos):
    """``make_helen_release(root)``: see :func:`_make_helen_release`."""
    return partial(_make_helen_release, photos)


@pytest.fixture(scope='session')
def write_helen_annotation():
    """``write_helen_annotation(path, name, points)``: see :func:`_write_helen_annotation`."""
    return _write_helen_annotation


@pytest.fixture(scope='session')
def run_script():
    """``run_script(name, *args, cwd=None, timeout=180)``: see :func:`_run_script`."""
    return _run_script


@pytest.fixture(scope='session')
def read_lmdb_images():
    """``read_lmdb_images(lmdb_path)``: see :func:`_read_lmdb_images`."""
    return _read_lmdb_images


@pytest.fixture(scope='session')
def read_lines():
    """``read_lines(path)``: see :func:`_read_lines`."""
    return _read_lines


@pytest.fixture(scope='session')
def pil_downsample():
    """``pil_downsample(hr, scale)``: see :func:`_pil_downsample`."""
    return _pil_downsample


@pytest.fixture(scope='session')
def png_bytes():
    """``png_bytes(image)``: see :func:`_png_bytes`."""
    return _png_bytes


@pytest.fixture(scope='session')
def rgba_with_transparent_border():
    """``rgba_with_transparent_border(rgb, border=40)``: see :func:`_rgba_with_transparent_border`."""
    return _rgba_with_transparent_border
