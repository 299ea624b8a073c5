"""What each chart of the dashboard draws: a Chart.js bar chart's data, built from the table it sits beside.

The page puts a spec in the canvas's `data-chart` attribute (JSON), and `static/js/metrics.js` hands it to the
vendored Chart.js (`static/vendor/chart-4.6.1.umd.min.js`): no inline script under the CSP, colours from CSS custom
properties (`--series-1`, ...). The table beside each chart is its accessible equivalent (the canvas is an image
with a name saying so). Pure functions of a `tables.Table`; no database.
"""
from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(frozen=True)
class Chart:
    name: str
    label: str  # the canvas's accessible name
    horizontal: bool
    unit: str  # count, minutes, percent: how axis ticks and tooltips read
    labels: list[str]
    datasets: list[dict] = field(default_factory=list)
    kind: str = "bar"  # or "line"

    @property
    def empty(self) -> bool:
        return not any(v for d in self.datasets for v in d["data"] if v)

    @property
    def height(self) -> int:
        """The canvas's height attribute (its width is 640): Chart.js keeps that aspect ratio."""
        return 260 if not self.horizontal else 90 + max(1, len(self.labels)) * (16 + 14 * len(self.datasets))

    def spec(self) -> dict:
        return {"type": self.kind, "horizontal": self.horizontal, "unit": self.unit, "labels": self.labels,
                "datasets": self.datasets}


def _label(value) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return "" if value is None else str(value)


def _value(value, kind: str):
    if value is None:
        return None
    if kind == "percent":
        return round(value * 100, 1)
    if kind == "minutes":
        return round(value, 1)
    return value


def bars(table, value_labels: list[str], horizontal: bool, rows=None, label_columns=(0,), kind: str = "bar") -> Chart:
    """One bar per row and value column (each column a dataset: series 1, 2, 3)."""
    rows = table.rows if rows is None else rows
    indexes = [table.column(label) for label in value_labels]
    kinds = {table.columns[i].kind for i in indexes}
    unit = kinds.pop() if len(kinds) == 1 else "count"
    unit = "count" if unit == "int" else unit
    labels = [" · ".join(_label(row[i]) for i in label_columns) for row in rows]
    datasets = [{"label": table.columns[i].label, "series": s + 1,
                 "data": [_value(row[i], table.columns[i].kind) for row in rows]} for s, i in enumerate(indexes)]
    return Chart(table.name, f"Chart of {table.title.lower()}: its figures are in the table beside it", horizontal,
                 unit, labels, datasets, kind)


def dashboard_charts(tables: dict, measure: str) -> dict[str, Chart]:
    """The chart of each dashboard (or agent page) table present in `tables`."""
    out = {}
    for name, table in tables.items():
        if name in ("compliance", "agent_compliance"):
            out[name] = bars(table, ["Compliance"], True)
        elif name in ("times", "agent_times"):
            rows = [row for row in table.rows if row[1].lower() == measure]
            out[name] = bars(table, ["Median", "90th percentile", "Mean"], True, rows=rows)
        elif name == "volume":
            out[name] = bars(table, ["Created", "Resolved"], False)
        elif name == "agent_trend":
            out[name] = bars(table, [table.columns[1].label, "Resolved"], False)
        elif name == "backlog_trend":
            out[name] = bars(table, ["Open"], False, kind="line")
        elif name == "backlog":
            out[name] = bars(table, ["Tickets"], True)
        elif name == "workload":
            out[name] = bars(table, ["Open", "Due within 4 hours", "Breached"], True)
        elif name == "agents":
            out[name] = bars(table, ["Median first response", "Median resolution"], True)
    return out
