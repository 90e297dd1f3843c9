"""Decode any image file to 8-bit RGB and encode PNGs the way BasicSR's LMDBs store them.

PIL rather than BasicSR's ``imfrombytes`` (OpenCV) does the decoding: ``imfrombytes`` drops an
alpha channel instead of compositing it and returns None for undecodable bytes (which then fails
far away without the file's name), and the preparation scripts crop the PIL image before turning
it into an array, which is much cheaper than converting a whole photo. One decoder for the
scripts and the dataset also keeps stored and on-the-fly LR images identical.
"""
import errno
import io
import os
import stat
from os import path as osp

import numpy as np
from PIL import Image, ImageOps

from sfmnet_plugin.utils.atomic import atomic_write_bytes

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.webp')
# basicsr's scandir matches suffixes case-sensitively; camera files are often *.JPG.
_IMAGE_SUFFIXES = IMAGE_EXTENSIONS + tuple(ext.upper() for ext in IMAGE_EXTENSIONS)
PNG_COMPRESS_LEVEL = 1  # what BasicSR's LMDB tools write: fast to decode, about 1/3 of raw size

_ALPHA_MODES = ('RGBA', 'LA', 'PA', 'RGBa', 'La')
_SIXTEEN_BIT_MODES = ('I;16', 'I;16L', 'I;16B', 'I;16N', 'I')


class ImageDecodeError(ValueError):
    """An image file that cannot be decoded (corrupt, truncated, not an image, unsupported mode)."""


def decode_rgb(content, name):
    """Decode image bytes to an ``H x W x 3`` uint8 RGB array; also return the file's PIL mode.

    Grey, palette, CMYK and YCbCr images are converted to RGB; transparent images are
    composited over white (as a viewer shows them; dropping alpha would expose whatever colour
    the transparent pixels happen to store); 16-bit grey is scaled to 8 bits. ``name`` (a path
    or an LMDB key) appears in the error raised for anything undecodable.
    """
    image, mode = _decode_rgb_image(content, name)
    return np.array(image), mode


def read_rgb_image(file_path, upright=False):
    """Read an image file as an RGB PIL image (converted as :func:`decode_rgb` does) and its original mode.

    This is the one decoder of every tool: the preparation scripts, ``sfmnet-infer``, ``sfmnet-restore``
    and the demo. The preparation scripts crop the PIL image before turning it into an array, which
    saves copying the whole photo. ``upright=True`` also turns the image by its EXIF orientation, as a
    viewer shows a camera photo (``sfmnet-restore``, the demo's photos); the default keeps the stored
    pixel order, which the datasets' landmark and box annotations refer to.
    """
    with open(file_path, 'rb') as f:
        return _decode_rgb_image(f.read(), file_path, upright)


def read_photo(file_path):
    """A photo as ``sfmnet-restore`` reads it: an upright RGB PIL image (:func:`read_rgb_image` with ``upright``)."""
    return read_rgb_image(file_path, upright=True)[0]


def _decode_rgb_image(content, name, upright=False):
    if not content:
        raise ImageDecodeError(f'{name}: empty image data.')
    try:
        with Image.open(io.BytesIO(content)) as img:
            img.load()  # decode inside the try: a truncated or corrupt file fails here, with its name
            mode = img.mode
            return _to_rgb(ImageOps.exif_transpose(img) if upright else img, name), mode
    except (OSError, SyntaxError, Image.DecompressionBombError) as err:
        raise ImageDecodeError(f'{name}: cannot decode image ({err}).') from err


def _to_rgb(img, name):
    mode = img.mode
    if mode == 'RGB':
        return img
    if mode in _ALPHA_MODES or (mode == 'P' and 'transparency' in img.info):
        white = Image.new('RGBA', img.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, img.convert('RGBA')).convert('RGB')
    if mode in _SIXTEEN_BIT_MODES:
        # PIL's convert('L') clips 16-bit values at 255 instead of rescaling them.
        grey = np.clip(np.rint(np.asarray(img, dtype=np.float64) / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(np.repeat(grey[:, :, None], 3, axis=2))
    if mode == 'F':
        raise ImageDecodeError(f'{name}: floating-point images (PIL mode F) are not supported; save it as 8-bit.')
    return img.convert('RGB')


def encode_png(rgb, compress_level=PNG_COMPRESS_LEVEL):
    """PNG bytes of an ``H x W x 3`` uint8 RGB array (lossless, so decoding gives the array back)."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format='PNG', compress_level=compress_level)
    return buffer.getvalue()


def write_png(path, rgb, compress_level=6):
    """Write an ``H x W x 3`` uint8 RGB array as a PNG file atomically (``path`` is absent, old or complete).

    The tools' image writer; level 6 is PIL's and OpenCV's default (smaller files than the LMDBs' level 1).
    """
    atomic_write_bytes(path, encode_png(rgb, compress_level))


_SPECIAL_FILES = ((stat.S_ISFIFO, 'a FIFO (named pipe)'), (stat.S_ISCHR, 'a character device'),
                  (stat.S_ISBLK, 'a block device'), (stat.S_ISSOCK, 'a socket'), (stat.S_ISDIR, 'a folder'))


def why_not_a_file(path):
    """None for a regular file (or a link to one), else why ``path`` cannot be read as an image file: a dangling
    link, a link loop, a FIFO (reading it would wait forever), a device (``/dev/zero`` never ends), a socket..."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if osp.islink(path):
            return f'a dangling symbolic link (to {os.readlink(path)}, which does not exist)'
        return 'not found'
    except OSError as error:
        if error.errno == errno.ELOOP:
            return 'a symbolic link loop'
        return error.strerror or str(error)
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _SPECIAL_FILES if test(mode)), 'not a regular file')
    link = f' (through the symbolic link to {os.readlink(path)})' if osp.islink(path) else ''
    return f'{kind}{link}, not a regular file'


def _image_entries(folder, recursive, prefix=''):
    """``(relative path, None or why it is skipped)`` of every image name below ``folder``, sorted; hidden entries
    are left out, as BasicSR's ``scandir`` does."""
    with os.scandir(folder) as entries:
        entries = sorted(entries, key=lambda entry: entry.name)
    for entry in entries:
        if entry.name.startswith('.'):
            continue
        relative = prefix + entry.name
        if recursive:
            try:
                is_folder = entry.is_dir()
            except OSError:
                is_folder = False
            if is_folder:
                yield from _image_entries(entry.path, recursive, relative + os.sep)
                continue
        if entry.name.endswith(_IMAGE_SUFFIXES):
            yield relative, why_not_a_file(entry.path)


def list_image_files(folder, recursive=False, skipped=None):
    """Map file stem -> path for every image directly in ``folder`` (png/jpg/jpeg/bmp/webp, lower or upper case).

    With ``recursive``, images in subfolders too, keyed by their relative path without extension
    (``person1/001``). Two files with one stem (``a.png`` and ``a.jpg``) would make pairing by name
    ambiguous, so that is an error naming both files. An image name that is not a regular file (a dangling link, a
    link loop, a FIFO, a device) is never read: it is appended to ``skipped`` as ``(path, reason)`` when a list is
    given.
    """
    if not osp.isdir(folder):
        raise FileNotFoundError(f'Image folder not found: {folder!r}.')
    files = {}
    for name, problem in _image_entries(folder, recursive):
        if problem is not None:
            if skipped is not None and not problem.startswith('a folder'):
                skipped.append((osp.join(folder, name), problem))
            continue
        stem = osp.splitext(name)[0].replace(os.sep, '/')
        if stem in files:
            raise ValueError(f'{folder!r}: {osp.basename(files[stem])!r} and {name!r} have the same name '
                             'stem, so the image key is ambiguous; remove or rename one.')
        files[stem] = osp.join(folder, name)
    return files


def images_in_subfolders(folder):
    """Relative paths of the images below ``folder``'s subfolders (what a non-recursive listing leaves out)."""
    return sorted(name for name, problem in _image_entries(folder, recursive=True)
                  if os.sep in name and problem is None)
