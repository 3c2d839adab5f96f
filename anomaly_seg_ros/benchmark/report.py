"""Benchmark results as text tables and as one JSON document."""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ['format_header', 'format_int8_choice', 'format_node', 'format_pipeline', 'write_json']

_ROW_LABELS = {'prepare': 'prepare (frame in)', 'fetch': 'fetch (outputs out)', 'backend': 'backend (4 stages)',
               'total': 'total'}


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    def line(row: Sequence[str]) -> str:
        return '  '.join(str(cell).ljust(widths[0]) if i == 0 else str(cell).rjust(widths[i])
                         for i, cell in enumerate(row)).rstrip()
    return [line(header), line(['-' * w for w in widths]), *[line(row) for row in rows]]


def format_header(doc: Mapping[str, Any]) -> list[str]:
    """Machine, versions and load lines."""
    machine, versions = doc['machine'], doc['versions']
    gpus = ', '.join(f'{g["name"]} ({g["memory"]})' for g in machine.get('gpus') or []) or 'no GPU'
    cores = f'{machine.get("usable_cores")} usable cores ({machine.get("physical_cores")} physical)'
    memory = f', {machine["memory_gb"]} GB' if machine.get('memory_gb') else ''
    load = doc.get('load_average') or {}
    libs = ', '.join(f'{k} {v}' for k, v in versions.items() if k not in ('onnxruntime_providers',))
    cpu = machine.get('cpu_description') or machine['cpu']
    return [f'machine: {cpu} (the CPU every figure below was measured on); {cores}{memory}, {gpus}; '
            f'{machine["os"]}',
            f'load average (1/5/15 min) at start {load.get("start")}, at end {load.get("end")}',
            f'versions: {libs}']


def format_pipeline(doc: Mapping[str, Any]) -> list[str]:
    """The pipeline benchmark document (see ``anomaly_seg bench --json``) as text."""
    result = doc['result']
    settings = result['settings']
    runs = result['runs']
    lines = [f'anomaly_seg bench: pipeline, {settings["input_size"]} camera frames, {settings["frames"]} frames '
             f'after {settings["warmup"]} warm-up, backends interleaved frame by frame',
             f'models: {result["model_dir"]} ({result["model_source"]})'
             + ''.join(f'; {run["label"]}: {run["model_dir"]}' for run in runs
                       if run.get('model_dir') and run['model_dir'] != result['model_dir'])
             + '; stage input sizes (WxH): '
             + ', '.join(f'{k} {v}' for k, v in result['stage_input_sizes'].items()),
             f'outputs: {settings["outputs"]}, output size: {settings["output_size"]}; '
             f'threads per backend: {runs[0]["threads"] if runs else "-"}; idle threads '
             f'{"spin" if settings.get("onnxruntime_spinning") else "sleep"} (ONNX Runtime allow_spinning '
             f'{int(bool(settings.get("onnxruntime_spinning")))}, OMP_WAIT_POLICY {settings.get("omp_wait_policy")})',
             *format_header(doc), '']
    header = ['ms (median / p90)', *[run['label'] for run in runs]]
    rows = []
    keys = [k for k in ('prepare', 'segmentation', 'synthesis', 'perceptual', 'dissimilarity', 'fetch', 'backend',
                        'total') if any(k in run['timings_ms'] for run in runs)]
    for key in keys:
        cells = []
        for run in runs:
            t = run['timings_ms'].get(key)
            cells.append(f'{t["median"]:.1f} / {t["p90"]:.1f}' if t else '-')
        rows.append([_ROW_LABELS.get(key, key), *cells])
    rows.append(['frames per second', *[f'{run["fps"]:.2f}' if run['fps'] else '-' for run in runs]])
    if len(runs) > 1:
        first = runs[0]['timings_ms']['total']['median']
        rows.append([f'speed vs {runs[0]["label"]}', *[f'{first / run["timings_ms"]["total"]["median"]:.2f}x'
                                                       for run in runs]])
    rows.append(['RSS added at load (MiB)', *[f'{run["memory"]["rss_at_load_mb"]:.0f}' for run in runs]])
    rows.append(['peak RSS, process (MiB)', *[f'{run["memory"]["peak_rss_mb"]:.0f}' for run in runs]])
    if any(run['memory']['gpu_memory_used_mb'] is not None for run in runs):
        rows.append(['GPU memory in use (MiB)', *[f'{run["memory"]["gpu_memory_used_mb"] or 0:.0f}' for run in runs]])
    lines += _table(header, rows)
    if result['ratios']:
        lines += ['', 'speed-ups against PyTorch eager (baseline median / candidate median, same run):']
        for r in result['ratios']:
            lines.append(f'  {r["candidate"]} vs {r["baseline"]}: four stages {r["backend"]}x, end to end '
                         f'{r["total"]}x (paired per-frame median {r["paired_total"]}x)')
    lines += format_int8_choice(result.get('int8_choice') or {}, doc['machine'])
    lines += ['', 'targets:', *[f'  {t["status"]:>4}: {t["name"]}: {t["measured"]}'
                                + (f' ({t["note"]})' if t.get('note') else '') for t in doc['targets']]]
    return lines


def format_int8_choice(choices: Mapping[str, Mapping[str, Any]], machine: Mapping[str, Any]) -> list[str]:
    """Which CPU chose each INT8 model's stages (``export --int8``) against the CPU of this run."""
    if not choices:
        return []
    here = machine.get('cpu_description') or machine.get('cpu')
    lines = ['', f'INT8 stage choice (model.yaml), this run on {here}:']
    for model_dir, choice in choices.items():
        stages = ', '.join(f'{stage} {precision}' for stage, precision in (choice.get('stages') or {}).items())
        made_on = choice.get('cpu') or 'a CPU the model does not record (exported before the CPU was recorded)'
        lines.append(f'  {model_dir}: {stages or "stages not recorded"}; chosen by export --int8 on {made_on}')
    lines.append('  export --int8 keeps in FP32 the stages not 1.1x faster on the exporting CPU; INT8 gains depend on '
                 'the CPU (without VNNI, i.e. AVX-512 VNNI, AVX-VNNI or AMX, they differ): re-export with --int8 '
                 'on the target CPU to choose for it')
    return lines


def format_node(doc: Mapping[str, Any]) -> list[str]:
    """The node benchmark document as text."""
    result = doc['result']
    s = result['settings']
    lines = [f'anomaly_seg bench --node: {s["input_size"]} rgb8 frames at {s["rate_hz"]} Hz for {s["duration_s"]} s '
             f'per run; backend {s["backend"]}; ROS_DOMAIN_ID {s["domain_id"]}; output size {s["output_size"]}',
             f'models: {s["model_dir"]}' + (f'; parameters {" ".join(s["parameters"])}' if s.get('parameters') else ''),
             f'Fast DDS profile: {s.get("dds_profile") or "none (default transports)"}',
             *format_header(doc)]
    for run in result['runs']:
        node = run['node']
        lines += ['', f'run "{run["name"]}": subscribed {", ".join(run["topics"])}',
                  f'  frames published {run["frames_published"]}, received by the node {node.get("frames_received")},'
                  f' processed {node.get("frames_processed")}, dropped by the node (newest frame wins) '
                  f'{node.get("frames_dropped")}, lost before the node {run["lost_before_node"]}']
        rows = []
        for topic in run['topics']:
            latency = run['latency_ms'].get(topic) or {}
            rows.append([topic, str(run['received'].get(topic, 0)), f'{run["rate_hz"].get(topic, 0.0):.2f}',
                         f'{latency.get("median", 0):.1f}', f'{latency.get("p90", 0):.1f}'])
        lines += ['  ' + line for line in _table(['topic', 'received', 'Hz', 'latency p50 ms', 'p90 ms'], rows)]
        timings = run['node_timings_ms']
        if timings:
            parts = ', '.join(f'{k} {v:.1f}' for k, v in timings.items())
            lines.append(f'  inside the node (mean ms per frame): {parts}')
        overhead = run['overhead']
        if overhead.get('ratio') is not None:
            lines.append(f'  node overhead (convert + prepare + fetch + publish) {overhead["node_ms"]:.1f} ms = '
                         f'{overhead["ratio"]:.1%} of the stage time {overhead["stages_ms"]:.1f} ms')
            if overhead.get('publishing') == 'parallel':
                lines.append(f'  publishing in parallel: the inference thread spends '
                             f'{overhead["inference_thread_ms"]:.1f} ms = {overhead["inference_thread_ratio"]:.1%} '
                             '(convert + prepare + fetch + waiting for the previous frame\'s publishing)')
        unsubscribed = {t: n for t, n in run['published'].items() if t not in run['topics']}
        lines.append(f'  messages published on unsubscribed topics: {sum(unsubscribed.values())}')
    lines += ['', 'targets:', *[f'  {t["status"]:>4}: {t["name"]}: {t["measured"]}'
                                + (f' ({t["note"]})' if t.get('note') else '') for t in doc['targets']]]
    return lines


def write_json(doc: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``doc`` as indented JSON to ``path`` (directories created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, sort_keys=False, default=str) + '\n')
    return path
