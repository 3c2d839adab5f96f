"""ResNet building blocks (He et al. 2016) with dilation, for the ICNet backbone.

Stride sits on the 3x3 conv (torchvision's "v1.5"); a projection shortcut (1x1 conv + BN) is used
where the shape changes.
"""
from __future__ import annotations

from torch import Tensor, nn

__all__ = ['BLOCKS', 'BasicBlock', 'Bottleneck', 'conv_bn_relu', 'make_layer']


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 dilation: int = 1) -> nn.Sequential:
    """Conv (no bias) + BatchNorm + ReLU, 'same' padding for odd kernels."""
    pad = dilation * (kernel_size // 2)
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    )


class BasicBlock(nn.Module):
    """Two 3x3 convs (expansion 1)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, dilation, dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, out, 3, 1, dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU()
        self.downsample = _shortcut(inplanes, out, stride)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (stride, dilation), 1x1 expand (expansion 4)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU()
        self.downsample = _shortcut(inplanes, out, stride)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + identity)


BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {'basic': BasicBlock, 'bottleneck': Bottleneck}


def _shortcut(inplanes: int, out: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and inplanes == out:
        return None
    return nn.Sequential(nn.Conv2d(inplanes, out, 1, stride, bias=False), nn.BatchNorm2d(out))


def make_layer(block: str, inplanes: int, planes: int, blocks: int, stride: int = 1,
               dilation: int = 1) -> nn.Sequential:
    """``blocks`` residual blocks of kind ``block`` ('basic' | 'bottleneck'); the first has ``stride``."""
    if block not in BLOCKS:
        raise ValueError(f'unknown residual block {block!r}; choose one of {sorted(BLOCKS)}')
    if blocks < 1:
        raise ValueError(f'a residual layer needs at least one block, got {blocks}')
    cls = BLOCKS[block]
    layers = [cls(inplanes, planes, stride, dilation)]
    layers += [cls(planes * cls.expansion, planes, 1, dilation) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)
