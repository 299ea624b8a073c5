"""Who is who and who may see what: entity scoping (access), entities, users and their sessions, portal
sign-in links.

May import: models, services.validation/errors/html. Never jobs or blueprints.
"""
