"""``anomaly_seg demo``: frame sources, the stream through the node, its pictures.

- :mod:`.run`: :func:`run_demo`, the node as its own process fed frames over ROS topics.
- :mod:`.client`: the demo's ROS client (publishes frames, receives every output topic); imports rclpy.
- :mod:`.sources`: synthetic scenes, image folders, rosbags as :class:`FrameSource` (no ROS graph needed).
- :mod:`.output`: per-frame pictures, contact sheet, video and summary (numpy and OpenCV only).

The sources and the output writer work without ROS, so this package imports its modules on first use
of a name, not when it is imported.
"""
from __future__ import annotations

from ..lazy_exports import lazy_exports

__all__ = [
    'DemoError', 'DemoOptions', 'run_demo',
    'IMAGE_TOPIC', 'DemoClient',
    'Frame', 'FrameSource', 'bag_source', 'folder_source', 'synthetic_source',
    'SHEET_COLUMNS', 'DemoSummary', 'OutputWriter', 'format_summary', 'picture_path', 'write_contact_sheet',
]

_HOMES: dict[str, tuple[str, ...]] = {  # module -> the names it gives this package
    'run': ('DemoError', 'DemoOptions', 'run_demo'),
    'client': ('IMAGE_TOPIC', 'DemoClient'),
    'sources': ('Frame', 'FrameSource', 'bag_source', 'folder_source', 'synthetic_source'),
    'output': ('SHEET_COLUMNS', 'DemoSummary', 'OutputWriter', 'format_summary', 'picture_path',
               'write_contact_sheet'),
}
__getattr__, __dir__ = lazy_exports(__name__, _HOMES, __all__)
