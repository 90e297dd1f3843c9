"""The body of ``sfmnet-benchmark`` (its command line and manual: :mod:`sfmnet_cli.benchmark`): the methods of
the command line, :func:`sfmnet_plugin.benchmark.run_benchmark` on them, the table printed."""
import argparse

from sfmnet_plugin.benchmark import (
    BenchmarkError,
    Bicubic,
    Network,
    SrFolder,
    TestSet,
    run_benchmark,
)

USER_ERRORS = (BenchmarkError,)  # one line each, as the plugin's error boundary prints them


def to_method(option, values):
    if option == '--bicubic':
        return Bicubic(*values)
    if option == '--network':
        return Network(*values)
    return SrFolder(*values)


def run(args: argparse.Namespace) -> int:
    methods = [to_method(option, values) for option, values in getattr(args, 'methods', None) or []]
    result = run_benchmark(TestSet(args.gt, args.lq, args.scale, args.downsampler, args.name), methods,
                           args.output, metrics=args.metrics, lpips_weights=args.lpips_weights,
                           arcface_onnx=args.arcface_onnx, device=args.device,
                           latency_repeats=args.latency_repeats, sheet_images=args.sheet_images,
                           overwrite=args.overwrite, progress=not args.no_progress, pairs=args.pairs,
                           recognizer=args.recognizer, fid_reference=args.fid_reference,
                           fid_weights=args.fid_weights, landmark_checkpoint=args.landmark_checkpoint)
    with open(result.files['table.md'], encoding='utf-8') as f:
        print(f.read())
    print(f'Results in {args.output}: {", ".join(sorted(result.files))}.')
    return 0

