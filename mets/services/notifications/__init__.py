"""Who is mailed about what: notify (events -> recipients -> outbox rows), per-entity settings, email
templates and their variables, and the bounded sandbox every admin-written template renders in.

May import: directory, hours, sla, models, the outbox. Subscribes to mets.events in init_app.
"""
