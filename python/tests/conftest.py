# Shared helpers for the Python tests: the double-precision torch oracle and the normwise error of
# design.md section 8.
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

import fastconv
from fastconv import bench_models


def reference(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """torch's conv2d in float64 and the magnitude of the sum (conv(|x|, |w|) + |b|)."""
    x, w = torch.as_tensor(np.asarray(x), dtype=torch.float64), torch.as_tensor(np.asarray(w), dtype=torch.float64)
    b = None if b is None else torch.as_tensor(np.asarray(b), dtype=torch.float64)
    y = F.conv2d(x, w, b, stride, padding, dilation, groups)
    mag = F.conv2d(x.abs(), w.abs(), None if b is None else b.abs(), stride, padding, dilation, groups)
    return y.numpy(), float(mag.max())


def normwise_error(y, ref, magnitude):
    y = np.asarray(y, dtype=np.float64)
    assert y.shape == ref.shape, (y.shape, ref.shape)
    return float(np.abs(y - ref).max() / max(magnitude, 1e-30))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def to_numpy(y):
    return y.detach().numpy() if isinstance(y, torch.Tensor) else y


def randomize_batchnorm(model):
    """Non-trivial BatchNorm statistics and affine parameters, so that folding is really tested."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return model.eval()


# Small CNNs with BatchNorm and residual blocks, for optimize() and its chains
SMALL_MODELS = {
    "resnet_basic": lambda: torchvision.models.resnet.ResNet(torchvision.models.resnet.BasicBlock, [1, 1, 1, 1],
                                                             num_classes=10),
    "resnet_bottleneck": lambda: torchvision.models.resnet.ResNet(torchvision.models.resnet.Bottleneck, [1, 2, 1, 1],
                                                                  num_classes=10, width_per_group=16),
    "mobilenet_v2": lambda: torchvision.models.mobilenet_v2(weights=None, width_mult=0.35, num_classes=10),
    "tiny": lambda: bench_models.TinyResNet(),
    # Blocks of the other torchvision families: squeeze-excitation and Hardswish (MobileNetV3), a
    # FusedMBConv without expansion whose activation precedes its residual add, MBConv (EfficientNet),
    # MNASNet's block, and ShuffleNetV2's InvertedResidual (a class name MobileNetV2 shares).
    "mobilenet_v3": lambda: torchvision.models.mobilenet_v3_small(weights=None, width_mult=0.5, num_classes=10),
    "efficientnet": lambda: torchvision.models.efficientnet.EfficientNet(
        [torchvision.models.efficientnet.FusedMBConvConfig(1, 3, 1, 16, 16, 2),
         torchvision.models.efficientnet.FusedMBConvConfig(4, 3, 2, 16, 24, 2),
         torchvision.models.efficientnet.MBConvConfig(4, 3, 1, 24, 24, 2)],
        dropout=0.2, num_classes=10, last_channel=64),
    "mnasnet": lambda: torchvision.models.mnasnet0_5(weights=None, num_classes=10),
    "shufflenet_v2": lambda: torchvision.models.shufflenet_v2_x0_5(weights=None, num_classes=10),
    # RegNet's ResBottleneckBlock: grouped 3x3, squeeze-excitation (Y), a projection shortcut
    "regnet_y": lambda: torchvision.models.regnet_y_400mf(weights=None, num_classes=10),
    "regnet_x": lambda: torchvision.models.regnet_x_400mf(weights=None, num_classes=10),
}
# Of SMALL_MODELS, those with no residual add to fuse.
SMALL_MODELS_WITHOUT_RESIDUALS = {"tiny", "shufflenet_v2"}
