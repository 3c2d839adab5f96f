"""ICNet (Zhao et al., "ICNet for Real-Time Semantic Segmentation on High-Resolution Images", ECCV 2018).

Three branches: the full-resolution image through three strided convs (1/8); the 1/2 image through
the backbone up to the first block of its second stage ("conv3_1", 1/16); that feature downsampled
by 2 through the rest of the (dilated) backbone and a parameter-free pyramid pooling sum (1/32).
Two cascade feature fusion units merge them (1/16, then 1/8); a classifier at 1/4 gives the logits.
Cascade label guidance: each fusion unit has a 1x1 classifier on its upsampled low-resolution input
(auxiliary logits for training, :meth:`ICNet.forward_with_aux`).

Input H and W must be divisible by 32. All resizes use constant scale factors or static sizes,
and pyramid pooling uses fixed average-pool kernels computed from the static feature size, so the
network exports to ONNX opset 17 with static shapes.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from .functional import static_size
from .resnet import BLOCKS, conv_bn_relu, make_layer

__all__ = ['CascadeFeatureFusion', 'ICNet', 'PyramidPoolingSum', 'icnet_light', 'icnet_resnet50']


def _pool_geometry(size: int, bins: int) -> tuple[int, int]:
    """(kernel, stride) of an average pool that splits ``size`` into min(bins, size) cells."""
    cells = min(bins, size)
    stride = size // cells
    return size - (cells - 1) * stride, stride


class PyramidPoolingSum(nn.Module):
    """ICNet's pyramid pooling: x + sum over bins of upsample(avg_pool_bins(x)); no parameters.

    Average pooling with fixed kernels and strides (computed from the static feature size) stands in
    for adaptive pooling, so the module exports where the bins do not divide the size.
    """

    def __init__(self, bins: Sequence[int] = (1, 2, 3, 6)) -> None:
        super().__init__()
        self.bins = tuple(int(b) for b in bins)

    def forward(self, x: Tensor) -> Tensor:
        height, width = static_size(x)
        out = x
        for b in self.bins:
            kh, sh = _pool_geometry(height, b)
            kw, sw = _pool_geometry(width, b)
            pooled = F.avg_pool2d(x, kernel_size=(kh, kw), stride=(sh, sw))
            out = out + F.interpolate(pooled, size=(height, width), mode='bilinear', align_corners=False)
        return out


class CascadeFeatureFusion(nn.Module):
    """CFF unit: upsample low x2, dilated 3x3 conv + BN; 1x1 conv + BN of high; sum, ReLU.

    forward(low (N, low_channels, h, w), high (N, high_channels, 2h, 2w)) ->
    (fused (N, out_channels, 2h, 2w), aux logits (N, num_classes, 2h, 2w) of the upsampled low input).
    """

    def __init__(self, low_channels: int, high_channels: int, out_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv_low = nn.Sequential(
            nn.Conv2d(low_channels, out_channels, 3, padding=2, dilation=2, bias=False),
            nn.BatchNorm2d(out_channels))
        self.conv_high = nn.Sequential(nn.Conv2d(high_channels, out_channels, 1, bias=False),
                                       nn.BatchNorm2d(out_channels))
        self.classifier = nn.Conv2d(low_channels, num_classes, 1)

    def fuse(self, low: Tensor, high: Tensor) -> tuple[Tensor, Tensor]:
        """(fused, upsampled low) — the classifier is applied by the caller only when needed."""
        low = F.interpolate(low, scale_factor=2.0, mode='bilinear', align_corners=False)
        return F.relu(self.conv_low(low) + self.conv_high(high)), low

    def forward(self, low: Tensor, high: Tensor) -> tuple[Tensor, Tensor]:
        fused, low_up = self.fuse(low, high)
        return fused, self.classifier(low_up)


class ICNet(nn.Module):
    """ICNet with a configurable ResNet backbone.

    Args:
        num_classes: output classes.
        block: ``'bottleneck'`` (ResNet-50 style) or ``'basic'`` residual blocks.
        layers: blocks per backbone stage (4 stages; stages 3 and 4 dilated 2 and 4).
        planes: base planes per stage (output = planes * 4 for bottlenecks, * 1 for basic).
        stem: channels of the backbone's three stem convs (then 3x3 max pool stride 2).
        sub1: channels of the full-resolution branch's three stride-2 convs.
        head_channels: channels after the pyramid pooling projection (1x1 conv).
        cff_channels: output channels of both cascade feature fusion units.
        psp_bins: pyramid pooling bins.

    forward(x (N, 3, H, W) normalized RGB, H and W divisible by 32) -> logits (N, num_classes, H, W).
    """

    def __init__(self, num_classes: int, block: str = 'bottleneck', layers: Sequence[int] = (3, 4, 6, 3),
                 planes: Sequence[int] = (32, 64, 128, 256), stem: Sequence[int] = (32, 32, 64),
                 sub1: Sequence[int] = (32, 32, 64), head_channels: int = 256, cff_channels: int = 128,
                 psp_bins: Sequence[int] = (1, 2, 3, 6)) -> None:
        super().__init__()
        if len(layers) != 4 or len(planes) != 4 or len(stem) != 3 or len(sub1) != 3:
            raise ValueError('ICNet needs 4 layers, 4 planes, 3 stem and 3 sub1 channel counts')
        expansion = BLOCKS[block].expansion if block in BLOCKS else 1
        self.num_classes = num_classes
        self.sub1 = nn.Sequential(conv_bn_relu(3, sub1[0], 3, 2), conv_bn_relu(sub1[0], sub1[1], 3, 2),
                                  conv_bn_relu(sub1[1], sub1[2], 3, 2))
        self.stem = nn.Sequential(conv_bn_relu(3, stem[0], 3, 2), conv_bn_relu(stem[0], stem[1]),
                                  conv_bn_relu(stem[1], stem[2]), nn.MaxPool2d(3, 2, 1))
        outs = [p * expansion for p in planes]
        self.layer1 = make_layer(block, stem[2], planes[0], layers[0])
        self.layer2 = make_layer(block, outs[0], planes[1], layers[1], stride=2)
        self.layer3 = make_layer(block, outs[1], planes[2], layers[2], dilation=2)
        self.layer4 = make_layer(block, outs[2], planes[3], layers[3], dilation=4)
        self.ppm = PyramidPoolingSum(psp_bins)
        self.ppm_proj = conv_bn_relu(outs[3], head_channels, 1)
        self.cff_24 = CascadeFeatureFusion(head_channels, outs[1], cff_channels, num_classes)
        self.cff_12 = CascadeFeatureFusion(cff_channels, sub1[2], cff_channels, num_classes)
        self.classifier = nn.Conv2d(cff_channels, num_classes, 1)
        for m in self.modules():  # torchvision's ResNet initialization
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _branches(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        height, width = static_size(x)
        if height % 32 or width % 32:
            raise ValueError(f'ICNet needs H and W divisible by 32, got {height}x{width}')
        x_sub1 = self.sub1(x)                                             # 1/8
        x_half = F.interpolate(x, scale_factor=0.5, mode='bilinear', align_corners=False)
        x_sub2 = self.layer2[0](self.layer1(self.stem(x_half)))          # 1/16 ("conv3_1")
        x_sub4 = F.interpolate(x_sub2, scale_factor=0.5, mode='bilinear', align_corners=False)
        x_sub4 = self.layer4(self.layer3(self.layer2[1:](x_sub4)))       # 1/32
        x_sub4 = self.ppm_proj(self.ppm(x_sub4))
        return x_sub1, x_sub2, x_sub4

    def forward(self, x: Tensor) -> Tensor:
        x_sub1, x_sub2, x_sub4 = self._branches(x)
        x_24, _ = self.cff_24.fuse(x_sub4, x_sub2)
        x_12, _ = self.cff_12.fuse(x_24, x_sub1)
        return self._head(x_12)

    def forward_with_aux(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Logits for cascade label guidance (training).

        Returns (main (N, C, H, W), aux_sub24 (N, C, H/8, W/8), aux_sub4 (N, C, H/16, W/16)):
        the main output as :meth:`forward`, the classifier of the 1/16+1/32 fusion output
        upsampled to 1/8, and the classifier of the 1/32 branch upsampled to 1/16. ICNet weighs the
        losses 1 (main), 0.4 (sub24) and 0.4 (sub4), with the label map nearest-resized to each.
        """
        x_sub1, x_sub2, x_sub4 = self._branches(x)
        x_24, aux_sub4 = self.cff_24(x_sub4, x_sub2)
        x_12, aux_sub24 = self.cff_12(x_24, x_sub1)
        return self._head(x_12), aux_sub24, aux_sub4

    def _head(self, x_12: Tensor) -> Tensor:
        x = F.interpolate(x_12, scale_factor=2.0, mode='bilinear', align_corners=False)   # 1/4
        return F.interpolate(self.classifier(x), scale_factor=4.0, mode='bilinear', align_corners=False)


def icnet_resnet50(num_classes: int) -> ICNet:
    """ICNet at paper scale (Zhao et al. 2018): ResNet-50 layout (3, 4, 6, 3 bottlenecks) with the
    channel counts halved as in ICNet, dilated stages 3 and 4, pyramid bins (1, 2, 3, 6).

    Args:
        num_classes: output classes (19 for Cityscapes).
    """
    return ICNet(num_classes, 'bottleneck', (3, 4, 6, 3), (32, 64, 128, 256), (32, 32, 64), (32, 32, 64),
                 head_channels=256, cff_channels=128)


def icnet_light(num_classes: int) -> ICNet:
    """A CPU-sized ICNet: two basic residual blocks per stage, narrow channels.

    Same three-branch cascade, fusion units, label guidance and pyramid pooling as
    :func:`icnet_resnet50`, at a small fraction of its cost (see the package's FLOP figures).

    Args:
        num_classes: output classes.
    """
    return ICNet(num_classes, 'basic', (2, 2, 2, 2), (32, 64, 128, 192), (16, 16, 32), (16, 16, 32),
                 head_channels=96, cff_channels=64)
