"""Three small convolutional networks; each scales raw 0..255 pixels itself."""

from __future__ import annotations

import torch
from torch import nn


def _conv(
    cin: int, cout: int, kernel: tuple[int, int] = (3, 3), stride: tuple[int, int] = (1, 1)
) -> nn.Sequential:
    padding = (kernel[0] // 2, kernel[1] // 2)
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class _Dilated(nn.Module):
    """A residual 1-D convolution along the strip; dilation widens what a column sees."""

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.norm = nn.BatchNorm1d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.relu(self.norm(self.conv(x)))


class PositionNet(nn.Module):
    """(N, 3, 56, W) strip -> (N, 3, W) logits: occupied, tail end, head end per column.

    The 2-D part folds the 56 rows (heights) into features per column; the dilated 1-D part
    lets each column see +-6 m of track, enough to tell where a body's band really ends
    (a far end's band stops short of it, see locowatch.facility.rectify).
    """

    def __init__(self, width: int = 40) -> None:
        super().__init__()
        self.rows = nn.Sequential(  # about 60 MFLOP per 25 m strip: cheap enough for a CPU
            _conv(3, 12, stride=(2, 1)),  # 28 rows
            _conv(12, 16, stride=(2, 1)),  # 14
            _conv(16, 24),
            nn.MaxPool2d((2, 1)),  # 7
            nn.Conv2d(24, width, (7, 3), padding=(0, 1)),  # 1 row
            nn.ReLU(inplace=True),
        )
        self.columns = nn.Sequential(*[_Dilated(width, d) for d in (1, 2, 4, 8, 16, 32)])
        self.head = nn.Conv1d(width, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.rows(x / 127.5 - 1.0).squeeze(2)
        return self.head(self.columns(features))


class SeriesNet(nn.Module):
    """(N, 3, 92, 240) body window -> (N, classes) logits."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(  # about 40 MFLOP per window
            _conv(3, 16, stride=(2, 2)),  # 46 x 120
            _conv(16, 32, stride=(2, 2)),  # 23 x 60
            nn.MaxPool2d(2),  # 11 x 30
            _conv(32, 64),
            nn.MaxPool2d(2),  # 5 x 15
            _conv(64, 96),
        )
        self.classify = nn.Linear(96, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.features(x / 127.5 - 1.0)
        return self.classify(features.mean(dim=(2, 3)))


class PlateNet(nn.Module):
    """(N, 1, 110, 220) grey end face -> (N, 88, classes) CTC logits, left to right.

    Plates sit in rows 30-91 and columns 35-175 of the face window (1st to 99th percentile
    of 6,688 twin samples: all series paint them at 2.0-2.3 m, centred), so the network
    reads the band rows 24-96, columns 24-200 at full resolution: its letters are only
    about 12 px tall. Two convolutions see them before any pooling; a convolution as
    tall as the remaining rows then folds heights into features (the text's height in the
    band varies less than a row cell), and each of the 88 steps reads 2 cm.
    Earlier versions that pooled first, or collapsed rows by a max or a learned attention,
    never learned to read.
    """

    CROP = (slice(24, 96), slice(24, 200))

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(  # about 330 MFLOP per face
            _conv(1, 16),
            _conv(16, 24),
            nn.MaxPool2d(2),  # 36 x 88
            _conv(24, 48),
            nn.MaxPool2d((2, 1)),  # 18 x 88
            _conv(48, 64),
            nn.MaxPool2d((2, 1)),  # 9 x 88
            _conv(64, 96),
        )
        self.collapse = nn.Sequential(
            nn.Conv2d(96, 128, (9, 1)), nn.BatchNorm2d(128), nn.ReLU(inplace=True)
        )
        self.sequence = nn.Sequential(
            nn.Conv1d(128, 128, 5, padding=2),
            nn.BatchNorm1d(128),
            nn.ReLU(inplace=True),
            nn.Conv1d(128, 128, 5, padding=2),
            nn.BatchNorm1d(128),
            nn.ReLU(inplace=True),
        )
        self.classify = nn.Conv1d(128, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows, columns = self.CROP
        band = x[:, :, rows, columns] / 127.5 - 1.0
        features = self.collapse(self.features(band)).squeeze(2)
        return self.classify(self.sequence(features)).transpose(1, 2)
