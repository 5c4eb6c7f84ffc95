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
    """(N, 3, 56, W) strip -> (N, outputs, W) logits per column: occupied, tail end, head
    end, and (``outputs=4``, position@2 on) hidden behind something nearer.

    The 2-D part folds the 56 rows (heights) into features per column; the dilated 1-D part
    lets each column see +-6 m of track, enough to tell where a body's band really ends
    (a far end's band stops short of it, see locowatch.facility.rectify).
    """

    def __init__(
        self, width: int = 40, outputs: int = 4, channels: tuple[int, int, int] = (12, 16, 24)
    ) -> None:
        super().__init__()
        a, b, c = channels
        self.rows = nn.Sequential(  # position@1: about 60 MFLOP per 25 m strip
            _conv(3, a, stride=(2, 1)),  # 28 rows
            _conv(a, b, stride=(2, 1)),  # 14
            _conv(b, c),
            nn.MaxPool2d((2, 1)),  # 7
            nn.Conv2d(c, width, (7, 3), padding=(0, 1)),  # 1 row
            nn.ReLU(inplace=True),
        )
        self.columns = nn.Sequential(*[_Dilated(width, d) for d in (1, 2, 4, 8, 16, 32)])
        self.head = nn.Conv1d(width, outputs, 1)

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
    """(N, 1, 110, 220) grey end face -> (N, 32, classes) CTC logits, left to right.

    Two stages in one graph, because finding the plate is what is hard: a locator
    regresses the plate's box from a half-resolution face, a sampling grid cuts that box
    out at 32 x 128 (ONNX GridSample), and a small CRNN reads the crop. Training supervises
    the box with the labels' ``plate_box`` and feeds the reader crops of jittered true
    boxes; at run time the reader reads where the locator points.
    """

    CROP = (32, 128)  # (height, width) of the cut-out plate
    unit_grid: torch.Tensor  # sampling positions of the crop in a box of size 1 (buffer)

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.locator = nn.Sequential(  # on 55 x 110
            _conv(1, 16, stride=(2, 2)),  # 28 x 55
            _conv(16, 32, stride=(2, 2)),  # 14 x 28
            _conv(32, 48, stride=(2, 2)),  # 7 x 14
            _conv(48, 32),
            nn.Flatten(),
            nn.Linear(32 * 7 * 14, 64),
            nn.ReLU(inplace=True),
            nn.Linear(64, 4),
            nn.Sigmoid(),  # centre x, centre y, width, height as shares of the face
        )
        self.reader = nn.Sequential(  # on 32 x 128
            # each crop to zero mean and unit contrast: dim night plates look like bright
            # day ones; the floor (eps) keeps a blank surface's noise from being blown up
            nn.InstanceNorm2d(1, eps=1e-2),
            _conv(1, 32),
            nn.MaxPool2d(2),  # 16 x 64
            _conv(32, 64),
            nn.MaxPool2d(2),  # 8 x 32
            _conv(64, 96),
            nn.MaxPool2d((2, 1)),  # 4 x 32
            _conv(96, 128),
            nn.Conv2d(128, 128, (4, 1)),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
        )
        self.sequence = nn.Sequential(
            nn.Conv1d(128, 128, 3, padding=1), nn.ReLU(inplace=True), nn.Conv1d(128, classes, 1)
        )
        height, width = self.CROP
        ys = torch.linspace(-1 + 1 / height, 1 - 1 / height, height)
        xs = torch.linspace(-1 + 1 / width, 1 - 1 / width, width)
        grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], dim=-1)
        self.register_buffer("unit_grid", grid[None], persistent=False)  # (1, h, w, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.read(x, self.locate(x))

    def locate(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 4) plate boxes: centre x, centre y, width, height as shares of the face."""
        half = nn.functional.avg_pool2d(x / 127.5 - 1.0, 2)
        return self.locator(half)

    def read(self, x: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
        centre = (box[:, :2] * 2 - 1)[:, None, None, :]
        size = box[:, 2:][:, None, None, :]
        grid = self.unit_grid * size + centre
        crop = nn.functional.grid_sample(x / 127.5 - 1.0, grid, align_corners=False)
        features = self.reader(crop).squeeze(2)
        return self.sequence(features).transpose(1, 2)
