"""What the REST API (/api/v1, `blueprints/api.py`) shares: token authentication for a request (`auth`), the
marshmallow schemas that validate its input and describe its output (`schemas`), and the OpenAPI 3.1 document
generated from the routes and those schemas (`spec`).

May import: services, models, extensions. Beside mets.web and mets.errors in the layers, it imports neither: a
refusal is raised as an HTTPException (with `errors` for field messages) that mets.errors answers as problem+json.
"""
