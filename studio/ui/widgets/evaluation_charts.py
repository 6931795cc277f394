"""The evaluation panel's charts (pyqtgraph): one metric as bars, class shares, FID against N."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QVBoxLayout, QWidget

from studio.evaluation.tables import COLUMNS, entries

COLOURS = [(120, 120, 120), (78, 154, 241), (241, 164, 78), (95, 196, 107), (224, 80, 80), (176, 124, 240),
           (64, 192, 192), (200, 200, 90)]
FLOOR_NAME = "floor"


def _short(name: str) -> str:
    return FLOOR_NAME if name.startswith("real held-out") else name


def _plain_axes(plot: pg.PlotWidget) -> None:
    for side in ("left", "bottom"):  # shares and 1/N read better as numbers than as "(x0.001)"
        plot.getAxis(side).enableAutoSIPrefix(False)


def _plot() -> pg.PlotWidget:
    plot = pg.PlotWidget()
    plot.setBackground(None)
    plot.showGrid(y=True, alpha=0.2)
    _plain_axes(plot)
    return plot


class MetricBars(QWidget):
    """One metric, one bar per model; the floor as a dashed line where it has a value."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.metric = QComboBox()
        self.metric.addItems([c[0] for c in COLUMNS])
        self.plot = _plot()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.metric)
        layout.addWidget(self.plot, 1)
        self._report: dict | None = None
        self.bars: pg.BarGraphItem | None = None
        self.metric.currentIndexChanged.connect(lambda _i: self.redraw())

    def set_report(self, report: dict | None) -> None:
        self._report = report
        self.redraw()

    def values(self) -> tuple[list[str], list[float], float | None]:
        """The shown models, their values of the chosen metric and the floor's (None if it has none)."""
        if not self._report:
            return [], [], None
        _heading, read, _spec = COLUMNS[self.metric.currentIndex()]
        names, values, floor_value = [], [], None
        for name, entry in entries(self._report):
            value = None if "error" in entry else read(entry)
            if _short(name) == FLOOR_NAME:
                floor_value = value
            elif value is not None:
                names.append(name)
                values.append(float(value))
        return names, values, floor_value

    def redraw(self) -> None:
        self.plot.clear()
        names, values, floor_value = self.values()
        self.plot.setLabel("left", self.metric.currentText())
        if not names:
            return
        x = np.arange(len(names))
        brushes = [pg.mkBrush(*COLOURS[(i + 1) % len(COLOURS)]) for i in range(len(names))]
        self.bars = pg.BarGraphItem(x=x, height=values, width=0.6, brushes=brushes)
        self.plot.addItem(self.bars)
        if floor_value is not None:
            line = pg.InfiniteLine(pos=floor_value, angle=0, label=f"floor {floor_value:.3g}",
                                   pen=pg.mkPen((160, 160, 160), width=1, style=Qt.PenStyle.DashLine),
                                   labelOpts={"position": 0.9, "color": (160, 160, 160)})
            self.plot.addItem(line)
        self.plot.getAxis("bottom").setTicks([[(i, n.replace("/", "/\n")) for i, n in enumerate(names)]])


class ClassFractionChart(pg.PlotWidget):
    """The share of samples read as each digit, per model, beside the 7-13 % target band."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground(None)
        self.showGrid(y=True, alpha=0.2)
        self.setLabel("bottom", "digit the classifier reads")
        self.setLabel("left", "share of samples")
        _plain_axes(self)
        self.addLegend(offset=(-10, 10))
        self.series: dict[str, list[float]] = {}

    def set_report(self, report: dict | None) -> None:
        self.clear()
        self.plotItem.legend.clear()
        self.series = {}
        if not report:
            return
        band = pg.LinearRegionItem((0.07, 0.13), orientation="horizontal", movable=False,
                                   brush=pg.mkBrush(95, 196, 107, 40), pen=pg.mkPen(None))
        self.addItem(band)
        shown = [(n, e) for n, e in entries(report) if e.get("class_fractions")]
        width = 0.8 / max(1, len(shown))
        for k, (name, entry) in enumerate(shown):
            fractions = [float(f) for f in entry["class_fractions"]]
            self.series[_short(name)] = fractions
            x = np.arange(10) - 0.4 + width * (k + 0.5)
            self.addItem(pg.BarGraphItem(x=x, height=fractions, width=width * 0.95,
                                         brush=pg.mkBrush(*COLOURS[k % len(COLOURS)]), name=_short(name)))
        self.getAxis("bottom").setTicks([[(d, str(d)) for d in range(10)]])


class FidCurvePlot(pg.PlotWidget):
    """FID against 1/N with the straight-line fit read at 1/N = 0: FID-infinity (Chong & Forsyth)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground(None)
        self.showGrid(x=True, y=True, alpha=0.2)
        self.setLabel("bottom", "1 / N")
        self.setLabel("left", "FID")
        _plain_axes(self)
        self.addLegend(offset=(-10, 10))
        self.curves: dict[str, tuple[list[int], list[float], float | None]] = {}

    def set_report(self, report: dict | None) -> None:
        self.clear()
        self.plotItem.legend.clear()
        self.curves = {}
        if not report:
            return
        for k, (name, entry) in enumerate(entries(report)):
            curve = entry.get("fid_vs_n") or {}
            if not curve.get("n"):
                continue
            sizes, fids = list(curve["n"]), list(curve["fid"])
            fid_inf = entry.get("fid_infinity")
            self.curves[_short(name)] = (sizes, fids, fid_inf)
            colour = COLOURS[k % len(COLOURS)]
            inv = 1.0 / np.asarray(sizes, float)
            self.plot(inv, fids, pen=None, symbol="o", symbolBrush=pg.mkBrush(*colour), symbolSize=8,
                      name=_short(name))
            if fid_inf is not None:  # the fitted line, extended to infinitely many samples
                slope, intercept = np.polyfit(inv, fids, 1)
                xs = np.array([0.0, inv.max()])
                self.plot(xs, intercept + slope * xs, pen=pg.mkPen(*colour, width=1, style=Qt.PenStyle.DashLine))
        ticks = sorted({n for sizes, _, _ in self.curves.values() for n in sizes})
        self.getAxis("bottom").setTicks([[(0.0, "∞")] + [(1.0 / n, f"1/{n}") for n in ticks]])
