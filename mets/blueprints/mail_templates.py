"""Admin pages for email templates: per-entity overrides of the defaults, with live preview."""
from flask import Blueprint

bp = Blueprint("mail_templates", __name__, url_prefix="/admin/mail/templates")
