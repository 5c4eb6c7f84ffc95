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


class RowAttention(nn.Module):
    """Collapse the heights of a feature map by a learned, per-column softmax over rows.

    The plate sits at a different height on every series; a max over rows lets edges of
    windows and lamps drown the letters, attention learns to look where text is.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.score = nn.Conv2d(channels, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.score(x), dim=2)
        return (x * weights).sum(dim=2)


class PlateNet(nn.Module):
    """(N, 1, 110, 220) grey end face -> (N, 110, classes) CTC logits, left to right.

    Each of the 110 steps reads 2 cm of the face (a letter is about 10 cm wide), after
    row attention has picked the heights where the text is.
    """

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(  # about 160 MFLOP per face
            _conv(1, 16),
            nn.MaxPool2d(2),  # 55 x 110
            _conv(16, 24),
            nn.MaxPool2d((2, 1)),  # 27 x 110
            _conv(24, 32),
            nn.MaxPool2d((2, 1)),  # 13 x 110
            _conv(32, 64),
        )
        self.rows = RowAttention(64)
        self.sequence = nn.Sequential(
            *[
                layer
                for _ in range(3)
                for layer in (nn.Conv1d(64, 64, 5, padding=2), nn.BatchNorm1d(64), nn.ReLU())
            ]
        )
        self.classify = nn.Conv1d(64, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.rows(self.features(x / 127.5 - 1.0))
        return self.classify(self.sequence(features)).transpose(1, 2)
