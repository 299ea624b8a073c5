"""Server-drawn bar charts of the dashboard's tables: the geometry of an inline SVG (templates/metrics/_chart.html
draws it), every bar with a <title> naming its value. No chart library: the page's table beside each chart is the
accessible equivalent, the SVG needs no script under the strict CSP, and colours come from CSS classes
(`series-1`, ...), never style attributes. Pure functions of a `tables.Table`; no database.
"""
from dataclasses import dataclass
from datetime import date, datetime

from mets.services.durations import format_minutes

WIDTH = 640
BAR_ROW = 22  # horizontal charts: one row per label
LABEL_WIDTH = 170
PLOT_HEIGHT = 180  # vertical charts


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: int  # 1, 2, 3: the CSS class series-N
    title: str


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    anchor: str = "start"


@dataclass(frozen=True)
class Chart:
    name: str
    label: str  # the SVG's accessible name
    width: int
    height: int
    bars: list[Bar]
    texts: list[Text]
    legend: list[tuple[int, str]]
    empty: bool


def format_value(value, kind: str) -> str:
    if value is None:
        return "none"
    if kind == "minutes":
        return format_minutes(round(value))
    if kind == "percent":
        return f"{value * 100:.1f}%"
    return str(value)


def _label(value) -> str:
    if isinstance(value, (date, datetime)):
        return value.strftime("%b %d") if isinstance(value, date) else value.isoformat()
    return str(value)


def horizontal(table, value_labels: list[str], label_columns: tuple[int, ...] = (0,), rows=None) -> Chart:
    """One row of bars per table row (each value column a bar of its own series), scaled to the largest value
    (percentages to 100%)."""
    rows = table.rows if rows is None else rows
    indexes = [table.column(label) for label in value_labels]
    kinds = [table.columns[i].kind for i in indexes]
    values = [row[i] for row in rows for i in indexes if row[i] is not None]
    top = 1.0 if kinds and all(k == "percent" for k in kinds) else max([v for v in values if v] or [1])
    bar_h = (BAR_ROW - 6) / len(indexes)
    plot = WIDTH - LABEL_WIDTH - 60
    bars, texts = [], []
    for r, row in enumerate(rows):
        name = " · ".join(str(row[i]) for i in label_columns)
        y0 = 20 + r * (BAR_ROW + 4)
        texts.append(Text(LABEL_WIDTH - 6, y0 + BAR_ROW / 2 + 4, name[:28], "end"))
        for s, (i, kind) in enumerate(zip(indexes, kinds)):
            value = row[i]
            width = 0 if not value else max(1.0, plot * value / top)
            bars.append(Bar(LABEL_WIDTH, round(y0 + s * bar_h, 1), round(width, 1), round(bar_h, 1), s + 1,
                            f"{name}: {table.columns[i].label} {format_value(value, kind)}"))
            if len(indexes) == 1:
                texts.append(Text(LABEL_WIDTH + width + 4, y0 + BAR_ROW / 2 + 4, format_value(value, kind)))
    height = 20 + len(rows) * (BAR_ROW + 4) + 10
    return Chart(table.name, f"Chart of {table.title.lower()}; its figures are in the table beside it", WIDTH,
                 height, bars, texts, [(s + 1, label) for s, label in enumerate(value_labels)], not values)


def vertical(table, value_labels: list[str]) -> Chart:
    """Groups of bars along the first column (days, weeks, months), one bar per value column."""
    indexes = [table.column(label) for label in value_labels]
    kinds = [table.columns[i].kind for i in indexes]
    values = [row[i] for row in table.rows for i in indexes if row[i] is not None]
    top = max([v for v in values if v] or [1])
    left, bottom = 40, 30
    plot_w = WIDTH - left - 10
    slot = plot_w / max(1, len(table.rows))
    bar_w = max(1.0, (slot * 0.8) / len(indexes))
    bars, texts = [], [Text(left - 4, 20 + 4, format_value(top, kinds[0]) if kinds[0] != "int" else str(top), "end"),
                       Text(left - 4, 20 + PLOT_HEIGHT, "0", "end")]
    every = max(1, len(table.rows) // 8)
    for r, row in enumerate(table.rows):
        x0 = left + r * slot + slot * 0.1
        for s, (i, kind) in enumerate(zip(indexes, kinds)):
            value = row[i] or 0
            height = PLOT_HEIGHT * value / top
            bars.append(Bar(round(x0 + s * bar_w, 1), round(20 + PLOT_HEIGHT - height, 1), round(bar_w, 1),
                            round(height, 1), s + 1,
                            f"{_label(row[0])}: {table.columns[i].label} {format_value(row[i], kind)}"))
        if r % every == 0:
            texts.append(Text(round(x0, 1), 20 + PLOT_HEIGHT + 16, _label(row[0])))
    return Chart(table.name, f"Chart of {table.title.lower()}; its figures are in the table beside it", WIDTH,
                 20 + PLOT_HEIGHT + bottom, bars, texts, [(s + 1, label) for s, label in enumerate(value_labels)],
                 not any(values))


def dashboard_charts(tables: dict, measure: str) -> dict[str, Chart]:
    """The chart of each dashboard (or agent page) table present in `tables`."""
    out = {}
    for name, table in tables.items():
        if name in ("compliance", "agent_compliance"):
            out[name] = horizontal(table, ["Compliance"])
        elif name in ("times", "agent_times"):
            rows = [row for row in table.rows if row[1].lower() == measure]
            out[name] = horizontal(table, ["Median", "90th percentile"], rows=rows)
        elif name == "volume":
            out[name] = vertical(table, ["Created", "Resolved"])
        elif name == "agent_trend":
            out[name] = vertical(table, [table.columns[1].label, "Resolved"])
        elif name == "backlog":
            out[name] = horizontal(table, ["Tickets"])
        elif name == "workload":
            out[name] = horizontal(table, ["Open", "Due within 4 hours", "Breached"])
        elif name == "agents":
            out[name] = horizontal(table, ["Median first response", "Median resolution"])
    return out
