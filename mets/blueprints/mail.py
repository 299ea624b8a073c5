"""Admin mail pages: the outbox queue, each message, pause/resume, SMTP settings, notification settings."""
from flask import Blueprint

bp = Blueprint("mail", __name__, url_prefix="/admin/mail")
