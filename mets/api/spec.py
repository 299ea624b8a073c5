"""The OpenAPI 3.1 document, generated from the code: every route of the `api` blueprint with the `operation` it
declares (summary, query and body schemas, answer schema), the marshmallow schemas turned into JSON Schema by
apispec's MarshmallowPlugin. Built once per app (the routes do not change while it runs)."""
import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import current_app

from mets.api import schemas

PROBLEM = "application/problem+json"
# The refusals every authenticated operation may answer, besides its own.
COMMON = {401: "No valid token", 429: "Too many requests (see Retry-After)"}
DESCRIPTION = """The METS help desk's API. Every call acts as the owner of its token and sees exactly what that person
sees in the web portal (their entities and departments). Make a token on your profile page and send it as
`Authorization: Bearer <token>`; cookies never authenticate here. Errors are RFC 9457 problem documents
(`application/problem+json`); validation problems list each field's messages in `errors`. Lists are pages
of `items` with an opaque `next_cursor`."""


def operation(summary: str, *, tag: str, query=None, body=None, response=None, status: int = 200,
              refusals=(), media: str = "application/json", public: bool = False, description: str = ""):
    """Describe a route of the API for its OpenAPI document (stored on the view function)."""
    def decorate(view):
        view.api_operation = dict(summary=summary, tag=tag, query=query, body=body, response=response,
                                  status=status, refusals=refusals, media=media, public=public,
                                  description=description or (view.__doc__ or "").strip())
        return view
    return decorate


def _path(rule: str) -> tuple[str, list[str]]:
    names = re.findall(r"<(?:[^:>]+:)?([^>]+)>", rule)
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule), names


def _problem(text: str) -> dict:
    return {"description": text, "content": {PROBLEM: {"schema": "Problem"}}}


def build(app) -> dict:
    spec = APISpec(title="METS API", version="1", openapi_version="3.1.0", plugins=[MarshmallowPlugin()],
                   info={"description": DESCRIPTION})
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer",
                                               "description": "A personal API token (profile page)"})
    spec.components.schema("Problem", schema=schemas.Problem)
    spec.components.schema("Interval", schema=schemas.IntervalOut)
    paths: dict[str, dict] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint.split(".")[0] != "api":
            continue
        view = app.view_functions[rule.endpoint]
        doc = getattr(view, "api_operation", None)
        if doc is None:
            continue
        path, names = _path(rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            # The view's name ("list_tickets", "add_reply"): each view serves one method, so the name is unique.
            op = {"operationId": rule.endpoint.split(".", 1)[1],
                  "summary": doc["summary"], "tags": [doc["tag"]]}
            if doc["description"]:
                op["description"] = doc["description"]
            parameters = [{"in": "path", "name": n, "required": True, "schema": {"type": "string"}} for n in names]
            if doc["query"] is not None:
                parameters.append({"in": "query", "schema": doc["query"]})
            if parameters:
                op["parameters"] = parameters
            if doc["body"] is not None:
                op["requestBody"] = {"required": True, "content": {"application/json": {"schema": doc["body"]}}}
            answer = {"description": "OK" if doc["status"] == 200 else "Created"}
            if doc["media"] == "application/json":
                answer["content"] = {"application/json": {"schema": doc["response"]}}
            elif doc["media"] == "text/csv":
                answer["content"] = {"text/csv": {"schema": {"type": "string"}}}
            elif doc["media"] == "text/html":
                answer["content"] = {"text/html": {"schema": {"type": "string"}}}
            responses = {doc["status"]: answer}
            if doc["query"] is not None or names:
                responses[400] = _problem("Bad query")
            if names:
                responses[404] = _problem("Not found, or not yours to see")
            if doc["body"] is not None:
                responses.update({400: _problem("The body is not JSON"),
                                  413: _problem("Too large"), 415: _problem("Not JSON"),
                                  422: _problem("Invalid fields (see errors)")})
            for code, text in doc["refusals"]:
                responses[code] = _problem(text)
            if doc["public"]:
                op["security"] = []
                responses[429] = _problem(COMMON[429])
            else:
                responses.update({code: _problem(text) for code, text in COMMON.items()})
            op["responses"] = dict(sorted(responses.items()))
            paths.setdefault(path, {})[method.lower()] = op
    ids = [op["operationId"] for operations in paths.values() for op in operations.values()]
    if len(ids) != len(set(ids)):  # a view serving two methods: give each method a view of its own
        raise RuntimeError(f"duplicate operationId among {sorted(ids)}")
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    document = spec.to_dict()
    document["security"] = [{"bearer": []}]
    return document


def document() -> dict:
    """This app's document (built on first use)."""
    cached = current_app.extensions.get("mets.openapi")
    if cached is None:
        cached = current_app.extensions["mets.openapi"] = build(current_app)
    return cached
