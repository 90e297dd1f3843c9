"""What a test run leaves for people to read: per-image metrics (CSV), a summary (Markdown), a contact sheet.

All three are written atomically (to a temporary name, then renamed) so an interrupted run never
leaves a half-written report that looks complete.
"""
import csv

import cv2
import numpy as np

from sfmnet_plugin.utils.atomic import atomic_write, atomic_write_bytes

CONTACT_SHEET_COLUMNS = ('LR', 'Bicubic', 'SR', 'HR')


def write_metrics_csv(path, rows, metric_names):
    """One row per image: ``image``, then each metric for SR and, when present, for the bicubic baseline."""
    baseline = any(f'bicubic_{m}' in row for row in rows for m in metric_names)
    columns = ['image', *metric_names, *([f'bicubic_{m}' for m in metric_names] if baseline else [])]

    def write(target):
        with open(target, 'w', newline='', encoding='utf-8') as f:
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction='ignore')
            writer.writeheader()
            for row in rows:
                writer.writerow({k: (f'{v:.6f}' if isinstance(v, float) else v) for k, v in row.items()})

    atomic_write(path, write, make_folder=True)


def summarize(rows, metric_names):
    """Mean of every metric over the images, for SR and (when present) the bicubic baseline."""
    keys = [k for m in metric_names for k in (m, f'bicubic_{m}') if rows and k in rows[0]]
    return {k: float(np.mean([row[k] for row in rows])) for k in keys}


def write_summary_markdown(path, title, rows, metric_names, method_name='SFMNet'):
    """A Markdown table: one line per method (bicubic, the network), one column per metric."""
    means = summarize(rows, metric_names)
    lines = [f'# {title}', '', f'{len(rows)} images; means over images.', '',
             '| method | ' + ' | '.join(metric_names) + ' |', '|---|' + '---|' * len(metric_names)]
    if all(f'bicubic_{m}' in means for m in metric_names):
        lines.append('| Bicubic (PIL) | ' + ' | '.join(f'{means[f"bicubic_{m}"]:.4f}' for m in metric_names) + ' |')
    lines.append(f'| {method_name} | ' + ' | '.join(f'{means[m]:.4f}' for m in metric_names) + ' |')

    def write(target):
        with open(target, 'w', encoding='utf-8') as f:
            f.write('\n'.join(lines) + '\n')

    atomic_write(path, write, make_folder=True)
    return means


def _labelled(image, label, height=18):
    """``image`` (BGR uint8) with a white band above it holding ``label``."""
    band = np.full((height, image.shape[1], 3), 255, np.uint8)
    cv2.putText(band, label, (3, height - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([band, image], axis=0)


def contact_sheet(panels, gap=2, columns=CONTACT_SHEET_COLUMNS):
    """Tile rows of BGR uint8 images, one per column of ``columns`` (default ``(LR, bicubic, SR, HR)``), into one image.

    The first column is the LR image, enlarged with nearest-neighbour sampling so its pixels stay
    visible, the last one the HR. Every row gets a band with the image name across its whole width (a
    name does not fit above a 128-px tile), every column its role (name the SR column by its method).
    """
    rows = []
    for name, images in panels:
        if len(images) != len(columns):
            raise ValueError(f'contact sheet row {name!r} has {len(images)} images for {len(columns)} columns.')
        height, width = images[-1].shape[:2]
        lr = cv2.resize(images[0], (width, height), interpolation=cv2.INTER_NEAREST)
        tiles = [_labelled(img, role) for role, img in zip(columns, (lr, *images[1:]))]
        spacer = np.full((tiles[0].shape[0], gap, 3), 255, np.uint8)
        row = tiles[0]
        for tile in tiles[1:]:
            row = np.concatenate([row, spacer, tile], axis=1)
        rows.append(_labelled(row, name))
    spacer = np.full((gap, rows[0].shape[1], 3), 255, np.uint8)
    sheet = rows[0]
    for row in rows[1:]:
        sheet = np.concatenate([sheet, spacer, row], axis=0)
    return sheet


def write_contact_sheet(path, panels, columns=CONTACT_SHEET_COLUMNS):
    """Write :func:`contact_sheet` of ``panels`` as a PNG."""
    ok, encoded = cv2.imencode('.png', contact_sheet(panels, columns=columns))
    if not ok:
        raise RuntimeError(f'could not encode the contact sheet for {path!r}')
    atomic_write_bytes(path, encoded, make_folder=True)
