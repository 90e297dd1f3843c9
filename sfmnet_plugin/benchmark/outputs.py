"""The benchmark's files: the paper-style table, CSVs and plots, each written atomically."""
import csv
import math
import os
from os import path as osp

from sfmnet_plugin.models.reports import write_contact_sheet
from sfmnet_plugin.utils.atomic import atomic_write

OUTPUT_FILES = ('table.md', 'table.csv', 'per_image.csv', 'contact_sheet.png', 'quality_vs_cost.png', 'roc.png',
                'pair_scores.csv')


def write_outputs(result, out_dir, panels):
    os.makedirs(out_dir, exist_ok=True)
    result.files = {name: osp.join(out_dir, name) for name in OUTPUT_FILES}
    atomic_write(result.files['table.md'], lambda target: _write_text(target, markdown_table(result)))
    atomic_write(result.files['table.csv'], lambda target: _write_csv(target, *table_rows(result)))
    per_image_header = ['image', 'method', *[column.name for column in result.columns if column.per_image]]
    atomic_write(result.files['per_image.csv'],
                       lambda target: _write_csv(target, per_image_header, result.per_image))
    if panels:
        write_contact_sheet(result.files['contact_sheet.png'], panels, columns=('LR', *result.methods, 'HR'))
    else:
        del result.files['contact_sheet.png']
    plot_quality_vs_cost(result, result.files['quality_vs_cost.png'])
    if result.roc_curves:
        plot_roc(result, result.files['roc.png'])
        pair_header = list(result.pair_scores[0])
        atomic_write(result.files['pair_scores.csv'],
                     lambda target: _write_csv(target, pair_header, result.pair_scores))
    else:
        del result.files['roc.png'], result.files['pair_scores.csv']


def _write_text(target, text):
    with open(target, 'w', encoding='utf-8') as f:
        f.write(text)


def _write_csv(target, header, rows):
    with open(target, 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: ('' if value is None else repr(value) if isinstance(value, float) else value)
                             for key, value in row.items()})


def table_rows(result):
    """Header and rows of ``table.csv``: the means at full precision, then the costs."""
    spread_names = list(dict.fromkeys(column for spreads in result.spreads.values() for column in spreads))
    header = ['method', 'kind', 'images', *[column.name for column in result.columns],
              *[f'{name}_std' for name in spread_names], 'parameters', 'macs', 'latency_ms']
    images = len(result.per_image) // len(result.methods)
    rows = [{'method': name, 'kind': result.kinds[name], 'images': images, **result.means[name],
             **{f'{column}_std': std for column, std in result.spreads.get(name, {}).items()},
             'parameters': result.costs[name].parameters, 'macs': result.costs[name].macs,
             'latency_ms': result.costs[name].latency_ms} for name in result.methods]
    return header, rows


def _best(values, higher_is_better):
    finite = [v for v in values if not math.isnan(v)]
    return (max if higher_is_better else min)(finite) if finite else None


def _format_count(value, unit=''):
    if value is None:
        return '–'
    for threshold, suffix in ((1e9, 'G'), (1e6, 'M'), (1e3, 'K')):
        if value >= threshold:
            return f'{value / threshold:.2f} {suffix}{unit}'
    return f'{value:g}{unit}' if value else '0'


def markdown_table(result):
    """The paper-style table: one row per method, best value of each metric in bold, then the costs."""
    images = len(result.per_image) // len(result.methods)
    header = ['Method', *[f'{column.title} {"↑" if column.higher_is_better else "↓"}' for column in result.columns],
              'Params', 'MACs', 'Latency (ms)']
    lines = [f'# {result.test_set}, x{result.scale}: {images} images', '',
             '| ' + ' | '.join(header) + ' |', '|---|' + '---:|' * (len(header) - 1)]
    best = {column.name: _best([result.means[name][column.name] for name in result.methods], column.higher_is_better)
            for column in result.columns}
    for name in result.methods:
        cells = [name]
        for column in result.columns:
            value = result.means[name][column.name]
            text = f'{value:.{column.digits}f}'
            text = f'**{text}**' if value == best[column.name] and len(result.methods) > 1 else text
            spread = result.spreads.get(name, {}).get(column.name)
            cells.append(text if spread is None else f'{text} ± {spread:.{column.digits}f}')
        cost = result.costs[name]
        cells += [_format_count(cost.parameters), _format_count(cost.macs),
                  '–' if cost.latency_ms is None else f'{cost.latency_ms:.1f}']
        lines.append('| ' + ' | '.join(cells) + ' |')
    lines += [''] + [f'* {name}: {source}' for name, source in result.sources.items()]
    lines += [''] + [f'* {note}' for note in result.notes]
    return '\n'.join(lines) + '\n'


def plot_metric_column(result):
    """The column the plot shows: the first PSNR column (sfmnet, sparnet, dic order), else the first column."""
    names = [column.name for column in result.columns]
    for name in ('psnr_sfmnet', 'psnr_sparnet', 'psnr_dic'):
        if name in names:
            return result.columns[names.index(name)]
    return result.columns[0]


def plot_quality_vs_cost(result, path):
    """Quality against parameters: a point per method with a known parameter count, a dashed line for the others.

    Returns the legend labels (one per method, in table order).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    column = plot_metric_column(result)
    figure = Figure(figsize=(6.4, 4.4), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    counts = [result.costs[name].parameters for name in result.methods if result.costs[name].parameters]
    markers = 'osD^vP*Xh<>'
    for index, name in enumerate(result.methods):
        value, parameters = result.means[name][column.name], result.costs[name].parameters
        if parameters:
            axes.plot([parameters / 1e6], [value], markers[index % len(markers)], color=f'C{index % 10}', markersize=8,
                      label=name)
            axes.annotate(name, (parameters / 1e6, value), textcoords='offset points', xytext=(6, 4), fontsize=8)
        else:
            what = 'no parameters' if parameters == 0 else 'cost unknown'
            axes.axhline(value, linestyle='--', linewidth=1, color=f'C{index % 10}', label=f'{name} ({what})')
    if counts and max(counts) / min(counts) > 20:
        axes.set_xscale('log')
    elif counts:
        axes.set_xlim(0, max(counts) / 1e6 * 1.25)  # a linear axis from zero parameters
    axes.set_xlabel('parameters (M)')
    axes.set_ylabel(f'{column.title} {"↑" if column.higher_is_better else "↓"}')
    axes.set_title(f'{result.test_set}, x{result.scale}: quality vs parameters')
    axes.grid(True, alpha=0.3)
    legend = axes.legend(fontsize=8, loc='best')
    figure.tight_layout()
    atomic_write(path, lambda target: figure.savefig(target, format='png'))
    return [text.get_text() for text in legend.get_texts()]


def plot_roc(result, path):
    """Verification ROC curves: one per method and the HR faces' (the upper bound), AUC in the legend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.6, 5.0), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for index, (name, (far, tar, auc)) in enumerate(result.roc_curves.items()):
        axes.plot(far, tar, color='black' if index == len(result.roc_curves) - 1 else f'C{index % 10}',
                  linestyle='--' if index == len(result.roc_curves) - 1 else '-', label=f'{name} (AUC {auc:.4f})')
    axes.plot([0, 1], [0, 1], color='grey', linewidth=0.8, linestyle=':')
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.01)
    axes.set_xlabel('false accept rate (FAR)')
    axes.set_ylabel('true accept rate (TAR)')
    axes.set_title(f'{result.test_set}, x{result.scale}: face verification ROC')
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8, loc='lower right')
    figure.tight_layout()
    atomic_write(path, lambda target: figure.savefig(target, format='png'))
