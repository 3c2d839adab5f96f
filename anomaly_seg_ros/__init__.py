"""Pixel-wise anomaly segmentation for driving scenes (Di Biase et al., CVPR 2021) as a ROS 2 package.

Layers, one job each (imports run downward only):
  labels, errors, model_config, stages   plain data and contracts (numpy only)
  data/                                   dataset readers and the synthetic scene generator
  networks/, uncertainty, stage_modules   PyTorch modules (training, export, torch backend)
  runtime/                                backends: onnxruntime, tensorrt, torch
  pipeline                                AnomalyPipeline: the same stages on any backend
  training/, export, evaluation/, bags    offline tools
  ros/                                    the node; the only layer besides bags that imports rclpy
"""
__version__ = '0.1.0'
