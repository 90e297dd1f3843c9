"""Compare face-SR methods on one test set with one metric code: :func:`run_benchmark` (and ``sfmnet-benchmark``).

A method is a network of BasicSR's registry with its checkpoint (:class:`Network`, loaded by
:class:`~sfmnet_plugin.inference.FaceRestorer`), the bicubic baseline (:class:`Bicubic`) or a folder of SR images
that any other code wrote (:class:`SrFolder`, e.g. another paper's released results). Every method is scored on
the same HR images by the same registered metric functions under the named protocols, so the numbers are
comparable however the SR images were made::

    import sfmnet_plugin
    from sfmnet_plugin.benchmark import Bicubic, Network, SrFolder, TestSet, run_benchmark

    result = run_benchmark(
        TestSet('datasets/CelebA/test/HR.lmdb', 'datasets/CelebA/test/LR_x8.lmdb', scale=8, name='CelebA'),
        [Bicubic(), Network('SFMNet', 'experiments/train_SFMNet_x8/models/net_g_latest.pth',
                            'options/train_SFMNet_x8.yml'), SrFolder('DIC', 'results/DIC/CelebA')],
        'benchmark/CelebA_x8')

It writes, each file atomically, ``table.md`` (the paper-style table, best in bold), ``table.csv`` (means, full
precision), ``per_image.csv``, ``contact_sheet.png`` (LR, one column per method, HR) and ``quality_vs_cost.png``
(PSNR against parameters). Everything that can fail for a user's reason (a missing or mis-sized SR image, a
checkpoint that does not fit, a missing weight file or extra) fails before the output folder is touched.

Modules: :mod:`.methods` (test set and methods), :mod:`.columns` (metric columns), :mod:`.run` (scoring),
:mod:`.outputs` (tables and plots).
"""
from sfmnet_plugin.benchmark.columns import ALL_METRICS, DEFAULT_METRICS
from sfmnet_plugin.benchmark.errors import BenchmarkError
from sfmnet_plugin.benchmark.methods import Bicubic, Network, SrFolder, TestSet
from sfmnet_plugin.benchmark.run import BenchmarkResult, run_benchmark

__all__ = ['ALL_METRICS', 'DEFAULT_METRICS', 'BenchmarkError', 'BenchmarkResult', 'Bicubic', 'Network', 'SrFolder',
           'TestSet', 'run_benchmark']
