"""Catalogue forms: an entity's ticket categories, its canned replies (macros)."""
from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField
from wtforms.validators import DataRequired, Length


class CategoryForm(FlaskForm):
    name = StringField("Category", validators=[DataRequired(), Length(max=80)])
    active = BooleanField("Offered", default=True)
