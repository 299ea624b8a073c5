"""Staff and customers, sign-in checks and memberships."""
from sqlalchemy import func, or_, select

from mets import clock
from mets.models import CUSTOMER, ROLES, STAFF, Entity, Membership, User
from mets.models.users import check_dummy_password
from mets.services.errors import DomainError, check
from mets.services.validation import email_error, normalize_email, text_error

MIN_PASSWORD = 10


def find_by_email(session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == normalize_email(email)))


def search_users(session, kind: str | None = None, q: str = "", limit: int = 200) -> list[User]:
    """The admin list: users by name, of one kind ("staff", "customer"; anything else: all) whose name or
    address contains `q` (lower-case)."""
    query = select(User).order_by(User.name)
    if kind in (STAFF, CUSTOMER):
        query = query.where(User.kind == kind)
    if q:
        query = query.where(or_(func.lower(User.name).contains(q, autoescape=True),
                                User.email.contains(q, autoescape=True)))
    return list(session.scalars(query.limit(limit)))


def authenticate(session, email: str, password: str) -> User | None:
    """The active staff user with these credentials, else None (callers show one generic error).

    Every refusal costs one password hash, so the time taken does not tell known addresses from unknown ones.
    """
    user = find_by_email(session, email)
    correct = user.check_password(password or "") if user is not None else check_dummy_password(password or "")
    if not correct or not user.is_staff or not user.active:
        return None
    user.last_login_at = clock.now()
    return user


def _validate(session, user: User | None, data: dict, password_required: bool) -> dict[str, str]:
    errors = {}
    email = normalize_email(data.get("email"))
    if msg := email_error(email):
        errors["email"] = msg
    else:
        other = find_by_email(session, email)
        if other is not None and other is not user:
            errors["email"] = "Another user has this email address."
    if msg := text_error(data.get("name"), "Name", 200):
        errors["name"] = msg
    password = data.get("password") or ""
    if (password or password_required) and len(password) < MIN_PASSWORD:
        errors["password"] = f"Use at least {MIN_PASSWORD} characters."
    if data.get("kind", STAFF) not in (STAFF, CUSTOMER):
        errors["kind"] = "Kind must be staff or customer."
    return errors


def create_user(session, data: dict) -> User:
    """Add a staff user or customer. `data`: email, name, kind, password (staff), is_admin, active."""
    kind = data.get("kind", STAFF)
    check(_validate(session, None, data, password_required=kind == STAFF))
    user = User(email=normalize_email(data["email"]), name=data["name"].strip(), kind=kind,
                is_admin=kind == STAFF and bool(data.get("is_admin")), active=bool(data.get("active", True)))
    if kind == STAFF:
        user.set_password(data["password"])
    session.add(user)
    session.flush()
    return user


def end_sessions(session, user: User) -> None:
    """Sign `user` out everywhere (every session and remember cookie they hold stops working)."""
    user.end_sessions()
    session.flush()


def update_user(session, user: User, data: dict, actor: User) -> User:
    """Change name, email, flags and (when given) the password; a new password or a deactivation signs the user
    out everywhere (models/users.py)."""
    data = {**data, "kind": user.kind}
    check(_validate(session, user, data, password_required=False))
    if user.id == actor.id and (not data.get("active", True) or (user.is_admin and not data.get("is_admin"))):
        raise DomainError({"active": "You cannot deactivate yourself or remove your own admin rights."})
    user.email = normalize_email(data["email"])
    user.name = data["name"].strip()
    user.active = bool(data.get("active", True))
    user.is_admin = user.is_staff and bool(data.get("is_admin"))
    if data.get("password"):
        user.set_password(data["password"])
    session.flush()
    return user


def get_or_create_customer(session, email: str, name: str | None = None) -> User:
    """The customer with this address, created on first contact. Staff addresses are refused."""
    email = normalize_email(email)
    if msg := email_error(email):
        raise DomainError({"customer_email": msg})
    user = find_by_email(session, email)
    if user is not None:
        if not user.is_customer:
            raise DomainError({"customer_email": "That address belongs to a staff member, not a customer."})
        if not user.active:
            raise DomainError({"customer_email": "That customer is deactivated."})
        return user
    name = (name or "").strip() or email.split("@")[0]
    if msg := text_error(name, "Customer name", 200):
        raise DomainError({"customer_name": msg})
    user = User(email=email, name=name, kind=CUSTOMER)
    session.add(user)
    session.flush()
    return user


def parse_skills(text: str | None) -> list[str]:
    """'Billing, hardware billing' -> ['billing', 'hardware'] (lower-case, unique, in order)."""
    seen: list[str] = []
    for raw in (text or "").replace(";", ",").split(","):
        tag = raw.strip().lower()
        if tag and tag not in seen:
            seen.append(tag)
    return seen


def set_membership(session, user: User, entity: Entity, role: str, tier: int, skills: list[str]) -> Membership:
    """Add or change the user's membership in an entity."""
    errors = {}
    if not user.is_staff:
        errors["user"] = "Only staff can be members of an entity."
    if role not in ROLES:
        errors["role"] = "Role must be manager or agent."
    if isinstance(tier, bool) or not isinstance(tier, int) or not 1 <= tier <= 9:
        errors["tier"] = "Tier must be a whole number from 1 to 9."
    if any(len(s) > 40 for s in skills):
        errors["skills"] = "Each skill must be at most 40 characters."
    check(errors)
    membership = session.scalar(
        select(Membership).where(Membership.user_id == user.id, Membership.entity_id == entity.id)
    )
    if membership is None:
        membership = Membership(user=user, entity_id=entity.id)
        session.add(membership)
    membership.role, membership.tier, membership.skills = role, tier, list(skills)
    session.flush()
    return membership


def remove_membership(session, membership: Membership) -> None:
    """Remove the membership; the user's loaded list forgets it at once (access checks read it)."""
    membership.user.memberships.remove(membership)  # delete-orphan deletes the row on flush
    session.flush()
