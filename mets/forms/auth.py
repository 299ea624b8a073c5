"""The staff sign-in form and the profile page's API token form."""
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):
    email = StringField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired()])
    remember = BooleanField("Keep me signed in")


class ApiTokenForm(FlaskForm):
    """A new API token on the profile page (services.directory.api_tokens checks the name)."""

    name = StringField("Token name", validators=[DataRequired(), Length(max=80)],
                       description="What uses it, so you know which to revoke: \"Nightly export\".")
