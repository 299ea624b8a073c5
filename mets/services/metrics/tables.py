"""The dashboard's and the agent page's tables: one `Table` per figure, drawn on the page beside its chart and
downloaded as CSV from the very same rows (so a download is exactly what the page shows, under the same scope).

Values stay raw (minutes, rates 0..1, dates, counts); the page formats them by column kind, the CSV writes
numbers (minutes to one decimal, rates as percentages) and neutralises spreadsheet formulas (`csv_lines`).
"""
import csv
import io
from dataclasses import dataclass
from datetime import date, datetime

from mets.models import User
from mets.services.metrics import csat
from mets.services.metrics import dashboard as figures
from mets.services.metrics.histograms import NOTE as APPROXIMATE_NOTE

CLOCK_LABELS = {"response": "First response", "next_reply": "Next reply", "resolution": "Resolution"}
STATUS_NAMES = {"new": "New", "open": "Open", "pending": "Pending", "on_hold": "On hold"}


@dataclass(frozen=True)
class Column:
    label: str
    kind: str = "int"  # text, int, minutes, percent, score (a mean of 1-5), date, instant
    approximate: bool = False  # its figures come from the rollups' histograms: shown with "≈", the note below


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    columns: tuple[Column, ...]
    rows: list[tuple]
    keys: tuple | list | None = None  # per row, the agent id it is about (the page links the agent page)

    def column(self, label: str) -> int:
        return [c.label for c in self.columns].index(label)

    @property
    def note(self) -> str:
        """What "≈" means, when a column is approximate."""
        return APPROXIMATE_NOTE if any(c.approximate for c in self.columns) else ""


DASHBOARD_TABLES = ("compliance", "times", "volume", "backlog_trend", "backlog", "workload", "agents", "csat")
AGENT_TABLES = ("agent_compliance", "agent_times", "agent_trend", "agent_csat")


def compliance_table(summary) -> Table:
    rows = [(CLOCK_LABELS[clock], c.achieved, c.breached, c.rate) for clock, c in summary.compliance.items()]
    return Table("compliance", "SLA compliance per clock",
                 (Column("Clock", "text"), Column("Achieved"), Column("Breached"), Column("Compliance", "percent")),
                 rows)


def times_table(summary) -> Table:
    rows, approximate = [], False
    for label, figures_ in (("First response", summary.first_response), ("Later responses", summary.response),
                            ("Resolution", summary.resolution)):
        for measure in ("business", "calendar"):
            d = figures_[measure]
            rows.append((label, measure.capitalize(), d.count, d.median, d.p90, d.mean))
            approximate = approximate or d.approximate
    return Table("times", "Response and resolution times",
                 (Column("Measure", "text"), Column("Time", "text"), Column("Count"),
                  Column("Median", "minutes", approximate), Column("90th percentile", "minutes", approximate),
                  Column("Mean", "minutes")), rows)


def volume_table(points, period: str) -> Table:
    return Table("volume", f"Created and resolved per {period}",
                 (Column(period.capitalize(), "date"), Column("Created"), Column("Resolved")),
                 [(p.start, p.created, p.resolved) for p in points])


def backlog_trend_table(points, period: str) -> Table:
    return Table("backlog_trend", f"Backlog at the end of each {period}",
                 (Column(period.capitalize(), "date"), Column("Open")), [(p.start, p.open) for p in points])


def backlog_table(rows) -> Table:
    return Table("backlog", "Backlog now (not resolved or closed)",
                 (Column("Status", "text"), Column("Tickets"), Column("Oldest created", "instant")),
                 [(STATUS_NAMES.get(r.status, r.status), r.count, r.oldest) for r in rows])


def workload_table(rows) -> Table:
    return Table("workload", "Agent workload now",
                 (Column("Agent", "text"), Column("Open"), Column("Due within 4 hours"), Column("Breached")),
                 [(r.name, r.open, r.due_soon, r.breached) for r in rows], keys=[r.agent_id for r in rows])


def agents_table(groups, measure: str) -> Table:
    rows = [((person.name if person else "No agent"), first.times.count, first.times.median, first.compliance.rate,
             resolution.times.count, resolution.times.median, resolution.compliance.rate)
            for person, first, resolution in groups]
    approximate = any(g.times.approximate for _, *pair in groups for g in pair)
    return Table("agents", f"Per agent ({measure} time)",
                 (Column("Agent", "text"), Column("First responses"),
                  Column("Median first response", "minutes", approximate),
                  Column("Response compliance", "percent"), Column("Resolutions"),
                  Column("Median resolution", "minutes", approximate), Column("Resolution compliance", "percent")),
                 rows, keys=[person.id if person else None for person, _, _ in groups])


def trend_table(points, period: str, measure: str) -> Table:
    return Table("agent_trend", f"Trend per {period}",
                 (Column(period.capitalize(), "date"), Column("Responses"),
                  Column(f"Median response ({measure})", "minutes"), Column("Resolved")),
                 [(p.start, p.responses, p.median, p.resolved) for p in points])


def csat_table(found: "csat.Figures", name: str = "csat") -> Table:
    """The satisfaction surveys sent in the period and their answers (`csat.figures`): one row."""
    rate = found.response_rate / 100 if found.response_rate is not None else None
    score = found.score_percent / 100 if found.score_percent is not None else None
    return Table(name, "Customer satisfaction",
                 (Column("Surveys sent"), Column("Answers"), Column("Response rate", "percent"),
                  Column("CSAT score (answers of 4 or 5)", "percent"), Column("Mean score (1–5)", "score")),
                 [(found.sent, found.answered, rate, score, found.mean)])


def dashboard_table(session, user: User, scope, name: str, now: datetime) -> Table:
    """One of DASHBOARD_TABLES, computed alone (its CSV download)."""
    f = scope.filters
    if name == "compliance":
        return compliance_table(figures.summary(session, user, scope))
    if name == "times":
        return times_table(figures.summary(session, user, scope))
    if name == "volume":
        return volume_table(figures.volume(session, scope), f.period)
    if name == "backlog_trend":
        return backlog_trend_table(figures.backlog_trend(session, scope, now), f.period)
    if name == "backlog":
        return backlog_table(figures.backlog(session, scope, figures.open_now(session, scope, now)))
    if name == "workload":
        return workload_table(figures.workload(session, scope, now))
    if name == "agents":
        return agents_table(figures.agent_breakdown(session, user, scope), f.measure)
    if name == "csat":
        return csat_table(csat.dashboard_figures(session, user, scope))
    raise KeyError(name)


def dashboard_tables(session, user: User, scope, now: datetime) -> dict[str, Table]:
    """Every table of the dashboard (the summary read once for the two it feeds, the ticket counts for the volume and
    the backlog trend, the open tickets for the backlog, the backlog trend and the workload)."""
    f = scope.filters
    summary = figures.summary(session, user, scope)
    counts = figures.ticket_counts(session, scope, now)
    found = figures.open_now(session, scope, now)
    return {"compliance": compliance_table(summary), "times": times_table(summary),
            "volume": volume_table(figures.volume(session, scope, counts), f.period),
            "backlog_trend": backlog_trend_table(figures.backlog_trend(session, scope, now, counts, found.total),
                                                 f.period),
            "backlog": backlog_table(figures.backlog(session, scope, found)),
            "workload": workload_table(figures.workload(session, scope, now, found)),
            "agents": agents_table(figures.agent_breakdown(session, user, scope), f.measure),
            "csat": csat_table(csat.dashboard_figures(session, user, scope))}


def agent_tables(session, user: User, scope, agent: User) -> dict[str, Table]:
    """The agent page's tables: their compliance and times, their trend, and their customers' satisfaction (the
    surveys of the tickets they were assigned when the customer rated, as the dashboard's agent filter reads them)."""
    f = scope.filters
    summary = figures.summary(session, user, scope, agent_id=agent.id)
    compliance, times = compliance_table(summary), times_table(summary)
    return {"agent_compliance": Table("agent_compliance", compliance.title, compliance.columns, compliance.rows),
            "agent_times": Table("agent_times", times.title, times.columns, times.rows),
            "agent_trend": trend_table(figures.agent_trend(session, user, scope, agent.id), f.period, f.measure),
            "agent_csat": csat_table(csat.dashboard_figures(session, user, scope, agent_id=agent.id), "agent_csat")}


# --- CSV ----------------------------------------------------------------------------------------------------

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value, kind: str) -> str:
    """A value as the CSV writes it; text that a spreadsheet would read as a formula gets a leading quote."""
    if value is None:
        return ""
    if kind == "minutes":
        text = f"{value:.1f}"
    elif kind == "percent":
        text = f"{value * 100:.1f}"
    elif kind == "score":
        text = f"{value:.2f}"
    elif isinstance(value, datetime):
        text = value.strftime("%Y-%m-%dT%H:%M:%SZ")
    elif isinstance(value, date):
        text = value.isoformat()
    else:
        text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_header(table: Table) -> list[str]:
    labels = []
    for c in table.columns:
        suffix = (" (minutes, approximate: within 1%)" if c.approximate else " (minutes)") if c.kind == "minutes" \
            else " (%)" if c.kind == "percent" else ""
        labels.append(c.label + suffix)
    return labels


def csv_lines(table: Table):
    """The table as CSV lines (a generator, for a streamed response): the header, then a line per row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(cells):
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(cells)
        return buffer.getvalue()

    yield line([csv_cell(label, "text") for label in csv_header(table)])
    for row in table.rows:
        yield line([csv_cell(value, column.kind) for value, column in zip(row, table.columns)])
