"""What ``anomaly_seg demo`` leaves behind: per-frame pictures, a contact sheet, a video, a summary.

Layout of the output folder::

    <out>/camera/<frame>.jpg            the frame as sent
    <out>/<topic>/<frame>.jpg           synthesis, anomaly_color, overlay as published; entropy,
                                        softmax_distance, perceptual_difference, dissimilarity colorized
                                        (turbo, 0..1); semantic_color as PNG (exact label colors)
    <out>/contact_sheet.png             a few frames side by side, one column per output
    <out>/demo.mp4                      camera | overlay over semantic_color | anomaly_color
    <out>/summary.json                  frame counts, rates, latency, node diagnostics, the CPU (model, cores,
                                        widest vector extension) the figures are from
    <out>/node.log                      the node's log

numpy and OpenCV only; the ROS side (:mod:`.run`) hands over arrays.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..visualization import colorize_heatmap, contact_sheet

__all__ = ['SHEET_COLUMNS', 'DemoSummary', 'OutputWriter', 'format_summary', 'picture_path', 'write_contact_sheet']

COLOR_TOPICS = ('semantic_color', 'synthesis', 'anomaly_color', 'overlay')
HEATMAP_TOPICS = ('entropy', 'softmax_distance', 'perceptual_difference', 'dissimilarity')
SHEET_COLUMNS = ('camera', 'semantic_color', 'synthesis', 'perceptual_difference', 'dissimilarity',
                 'anomaly_color', 'overlay')
_VIDEO_LAYOUT = (('camera', 'overlay'), ('semantic_color', 'anomaly_color'))
# JPEG encodes 20x faster than PNG here (~0.3 ms a 512x256 picture): the demo shares the CPU with the
# node. Label maps stay PNG: flat colours compress fast and must stay exact.
_FORMATS = {'.png': [cv2.IMWRITE_PNG_COMPRESSION, 1], '.jpg': [cv2.IMWRITE_JPEG_QUALITY, 92]}
_PNG_TOPICS = ('semantic_color',)


def picture_path(out_dir: Path, topic: str, name: str) -> Path:
    """Where the picture of ``topic`` for frame ``name`` is written."""
    return Path(out_dir) / topic / f'{name}{".png" if topic in _PNG_TOPICS else ".jpg"}'


def _write_image(path: Path, rgb: np.ndarray) -> None:
    image = rgb if rgb.ndim == 2 else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), image, _FORMATS[path.suffix]):
        raise OSError(f'cannot write {path}')


class OutputWriter:
    """Writes each received frame's pictures and appends it to the video.

    Args:
        out_dir: the output folder (created).
        video_fps: frame rate of ``demo.mp4``; ``None`` writes no video.
    """

    def __init__(self, out_dir: Path, video_fps: float | None) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.frames: list[str] = []
        self.video_path: Path | None = None
        self.video_note = 'not requested' if video_fps is None else ''
        self._video_fps = video_fps
        self._video: Any = None
        self._tile: tuple[int, int] | None = None

    def write(self, name: str, camera: np.ndarray, outputs: Mapping[str, np.ndarray]) -> None:
        """``camera``: HxWx3 uint8 RGB; ``outputs``: topic -> array as published (rgb8, mono8, 32FC1)."""
        pictures = {'camera': camera}
        pictures.update({t: outputs[t] for t in COLOR_TOPICS if t in outputs})
        pictures.update({t: colorize_heatmap(outputs[t]) for t in HEATMAP_TOPICS if t in outputs})
        for topic, rgb in pictures.items():
            path = picture_path(self.out_dir, topic, name)
            path.parent.mkdir(exist_ok=True)
            _write_image(path, rgb)
        self.frames.append(name)
        if self._video_fps is not None:
            self._add_video_frame(pictures)

    def _add_video_frame(self, pictures: Mapping[str, np.ndarray]) -> None:
        if any(t not in pictures for row in _VIDEO_LAYOUT for t in row):
            return
        if self._tile is None:
            height, width = pictures['camera'].shape[:2]
            scale = min(1.0, 640.0 / width)
            self._tile = (int(round(height * scale / 2)) * 2, int(round(width * scale / 2)) * 2)
        frame = contact_sheet([[pictures[t] for t in row] for row in _VIDEO_LAYOUT],
                              [list(row) for row in _VIDEO_LAYOUT], tile_size=self._tile, gap=2)
        if self._video is None:
            path = self.out_dir / 'demo.mp4'
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), float(self._video_fps),
                                     (frame.shape[1], frame.shape[0]))
            if not writer.isOpened():
                self._video_fps = None
                self.video_note = 'OpenCV cannot write MP4 here (no mp4v encoder)'
                return
            self._video, self.video_path = writer, path
        self._video.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        if self._video is not None:
            self._video.release()
            self._video = None


def write_contact_sheet(out_dir: Path, frames: Sequence[str], rows: int = 4, width: int = 320) -> Path | None:
    """``contact_sheet.png`` of up to ``rows`` evenly spaced frames, read back from their pictures."""
    out_dir = Path(out_dir)
    if not frames:
        return None
    picks = sorted({frames[int(i)] for i in np.linspace(0, len(frames) - 1, min(rows, len(frames)))})
    columns = [c for c in SHEET_COLUMNS if picture_path(out_dir, c, picks[0]).is_file()]
    grid = []
    for name in picks:
        row = []
        for column in columns:
            image = cv2.imread(str(picture_path(out_dir, column, name)), cv2.IMREAD_COLOR)
            row.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        grid.append(row)
    height, frame_width = grid[0][0].shape[:2]
    tile = (max(1, round(height * width / frame_width)), width)
    titles = [[f'{column} {name}' if c == 0 else column for c, column in enumerate(columns)] for name in picks]
    path = out_dir / 'contact_sheet.png'
    _write_image(path, contact_sheet(grid, titles, tile_size=tile))
    return path


@dataclass
class DemoSummary:
    """Figures of one demo run (written as summary.json)."""

    source: str
    model_dir: str
    backend: str
    rate_hz: float
    frames_sent: int = 0
    frames_received: int = 0
    frames_dropped: int = 0
    duration_s: float = 0.0
    output_rate_hz: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    node: dict[str, str] = field(default_factory=dict)
    out_dir: str = ''
    contact_sheet: str | None = None
    video: str | None = None
    video_note: str = ''
    domain_id: int = 0
    interrupted: bool = False
    cpu: str = ''  # benchmark.machine.cpu_description(): the CPU these figures are from

    def frame_ms(self) -> float | None:
        """The node's time per frame (mean of its last diagnostics period, every ``stage_ms.*`` summed)."""
        values = []
        for key, value in self.node.items():
            if key.startswith('stage_ms.'):
                try:
                    values.append(float(value))
                except (TypeError, ValueError):
                    continue
        return sum(values) if values else None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False)

    def save(self, path: Path) -> Path:
        Path(path).write_text(self.to_json() + '\n')
        return Path(path)


def _dropped_explanation(summary: DemoSummary) -> str | None:
    """One line on why frames did not come back when the node dropped them (None when none were dropped)."""
    node_dropped = summary.node.get('frames_dropped')
    try:
        node_dropped = int(node_dropped) if node_dropped is not None else None
    except (TypeError, ValueError):
        node_dropped = None
    if not summary.frames_dropped or node_dropped == 0:
        return None
    policy = ('dropped frames are not a fault: the node works on the newest frame and drops the frames that '
              'arrive while it is still processing one (newest frame wins)')
    frame_ms = summary.frame_ms()
    if frame_ms is None or frame_ms <= 0:
        return f'{policy}; its CPU is slower than the stream'
    keeps_up = 1000.0 / frame_ms
    if summary.rate_hz > 0 and keeps_up >= summary.rate_hz:  # fast enough on average: busy at times
        return (f'{policy}: at {frame_ms:.0f} ms a frame on this CPU it keeps up with {keeps_up:.1f} Hz on average, '
                f'so frames came in while it was busy at times (other processes, start-up)')
    stream = f'the {summary.rate_hz:g} Hz sent' if summary.rate_hz > 0 else 'the stream'
    return (f'{policy}: at {frame_ms:.0f} ms a frame on this CPU it keeps up with {keeps_up:.1f} Hz, slower than '
            f'{stream} (send at a lower --rate to get every frame back)')


def format_summary(summary: DemoSummary) -> str:
    """A few lines for the terminal."""
    rate = 'as fast as the node answers' if summary.rate_hz <= 0 else f'at {summary.rate_hz:g} Hz'
    line = f'{summary.frames_sent} frames sent {rate}, {summary.frames_received} came back with every output'
    if summary.frames_dropped:
        node_dropped = summary.node.get('frames_dropped')
        line += f', {summary.frames_dropped} did not'
        if node_dropped is not None:
            line += f' (the node dropped {node_dropped}: the newest frame wins)'
    lines = [f'source: {summary.source}; models: {summary.model_dir}', f'CPU: {summary.cpu or "unknown"}', line]
    explanation = _dropped_explanation(summary)
    if explanation:
        lines.append(explanation)
    latency = summary.latency_ms
    if latency:
        lines.append(f'output rate {summary.output_rate_hz:.2f} Hz; latency (frame stamp -> last output) '
                     f'median {latency["median"]:.0f} ms, p90 {latency["p90"]:.0f} ms, max {latency["max"]:.0f} ms')
    node = summary.node
    stages = [f'{k.split(".", 1)[1]} {float(v):.0f} ms' for k, v in node.items() if k.startswith('stage_ms.')]
    if stages:
        lines.append(f'node on {node.get("backend", summary.backend)} ({node.get("device", "?")}): '
                     + ', '.join(stages))
    files = ['per-frame pictures (one folder per output)']
    if summary.contact_sheet:
        files.append(Path(summary.contact_sheet).name)
    files.append(Path(summary.video).name if summary.video else f'no video ({summary.video_note})')
    files.append('summary.json')
    lines.append(f'outputs in {summary.out_dir}: ' + ', '.join(files))
    return '\n'.join(lines)
