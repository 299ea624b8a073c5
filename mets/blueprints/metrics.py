"""The KPI dashboard (`/metrics/`: admins every entity, managers the entities they manage) and the agent page
(`/metrics/agents/<id>`: an agent their own), each table also as CSV, read under the page's own scope.

Filters are a GET form: htmx swaps the figures (`#dashboard`) and pushes the URL, so Back and shared links give
the same page; without script the form submits normally.
"""
from flask import Blueprint, Response, abort, redirect, request, stream_with_context, url_for
from flask_login import current_user

from mets import clock
from mets.extensions import db
from mets.models import PRIORITIES
from mets.services.metrics import charts, dashboard, tables
from mets.web import load_metrics_agent, render, staff_required

bp = Blueprint("metrics", __name__, url_prefix="/metrics")


def _dashboard_scope():
    allowed = dashboard.dashboard_scope(db.session, current_user)
    if allowed == set():
        return None
    filters = dashboard.Filters.from_args(request.args, clock.now().date())
    return allowed, dashboard.scope_for(db.session, allowed, filters, local=True)


@bp.get("/")
@staff_required
def index():
    found = _dashboard_scope()
    if found is None:  # an agent reads their own page only
        return redirect(url_for("metrics.agent", user_id=current_user.id, **request.args))
    allowed, scope = found
    now = clock.now()
    shown = tables.dashboard_tables(db.session, current_user, scope, now)
    return render("metrics/index.html", "metrics/_dashboard.html", scope=scope, f=scope.filters, tables=shown,
                  charts=charts.dashboard_charts(shown, scope.filters.measure), now=now,
                  entity_choices=dashboard.entities_for(db.session, allowed),
                  agent_choices=dashboard.agents_for(db.session, allowed), priorities=PRIORITIES,
                  periods=dashboard.PERIODS)


@bp.get("/export/<name>.csv")
@staff_required
def export(name):
    found = _dashboard_scope()
    if found is None or name not in tables.DASHBOARD_TABLES:
        abort(404)
    table = tables.dashboard_table(db.session, current_user, found[1], name, clock.now())
    return _csv(table, found[1].filters)


@bp.get("/agents/<int:user_id>")
@staff_required
def agent(user_id):
    person, allowed = load_metrics_agent(user_id)
    scope = dashboard.scope_for(db.session, allowed, dashboard.Filters.from_args(request.args, clock.now().date()))
    scope.filters.agent_id = None
    shown = tables.agent_tables(db.session, current_user, scope, person)
    return render("metrics/agent.html", "metrics/_agent.html", scope=scope, f=scope.filters, agent=person,
                  tables=shown, charts=charts.dashboard_charts(shown, scope.filters.measure),
                  entity_choices=dashboard.entities_for(db.session, allowed), priorities=PRIORITIES,
                  periods=dashboard.PERIODS)


@bp.get("/agents/<int:user_id>/export/<name>.csv")
@staff_required
def agent_export(user_id, name):
    person, allowed = load_metrics_agent(user_id)
    if name not in tables.AGENT_TABLES:
        abort(404)
    scope = dashboard.scope_for(db.session, allowed, dashboard.Filters.from_args(request.args, clock.now().date()))
    scope.filters.agent_id = None
    table = tables.agent_tables(db.session, current_user, scope, person)[name]
    return _csv(table, scope.filters, f"agent-{person.id}-")


def _csv(table, filters, prefix: str = "") -> Response:
    """A streamed download of the rows already read (the queries ran in the request; the stream only writes)."""
    filename = f"mets-{prefix}{table.name.replace('_', '-')}-{filters.since}-{filters.last_day}.csv"
    return Response(stream_with_context(tables.csv_lines(table)), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"',
                             "Cache-Control": "private, no-store"})
