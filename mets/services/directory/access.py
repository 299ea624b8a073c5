"""Who may see what. Every ticket, rule or metric query goes through `scope_tickets`."""
from sqlalchemy import bindparam, false, select

from mets import transaction
from mets.models import Entity, Membership, Ticket, TicketAlias, User
from mets.services.statements import Built


def _children_map(session) -> dict[int | None, list[int]]:
    children: dict[int | None, list[int]] = {}
    for entity_id, parent_id in session.execute(select(Entity.id, Entity.parent_id)):
        children.setdefault(parent_id, []).append(entity_id)
    return children


def with_descendants(session, entity_ids) -> set[int]:
    """The given entities and every entity below them."""
    children = _children_map(session)
    seen: set[int] = set()
    stack = list(entity_ids)
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(children.get(current, []))
    return seen


def managed_entity_ids(session, user: User) -> set[int] | None:
    """The entities `user` manages: None (every one) for admins; for others the entities of their manager
    memberships with the departments below them (empty: none). Callers check that the user is active staff."""
    if user.is_admin:
        return None
    managed = session.scalars(select(Membership.entity_id).where(Membership.user_id == user.id,
                                                                 Membership.role == "manager")).all()
    return with_descendants(session, managed) if managed else set()


def ancestors(session, entity: Entity) -> list[Entity]:
    """Parent, grandparent, ... (nearest first)."""
    chain, seen, current = [], {entity.id}, entity.parent
    while current is not None and current.id not in seen:
        chain.append(current)
        seen.add(current.id)
        current = current.parent
    return chain


def lineage(session, entity: Entity) -> list[Entity]:
    """The entity, then its parent, grandparent, ...: where inherited settings are looked up, nearest first."""
    return [entity, *ancestors(session, entity)]


def _worked_in_statement(user_id):
    tree = select(Membership.entity_id.label("id")).where(Membership.user_id == user_id) \
        .cte("worked_in", recursive=True)
    tree = tree.union(select(Entity.id).where(Entity.parent_id == tree.c.id))
    return select(tree.c.id)


# Built once (building a recursive CTE costs more than running it): the user is a parameter.
_WORKED_IN = _worked_in_statement(bindparam("worked_in_user"))


def worked_in():
    """A select of the ids of the entities a (non-admin) staff user works in: their memberships' entities and every
    entity below them, found by the database in one recursive query (UNION, not UNION ALL: a cycle ends). The user
    is a parameter: execute with `scope_params(user)`."""
    return _WORKED_IN


def worked_in_of(user_id):
    """`worked_in` of the user whose id `user_id` (a SQL expression) is: for a statement that finds the user too
    (the API's token lookup reads its user's scope with it)."""
    return _worked_in_statement(user_id)


def scope_params(user: User) -> dict:
    """The parameters of `worked_in` and `scope_in_sql` for `user` (harmless for a statement without them): the user,
    whose entities a staff member's scope walks and whose own tickets a customer's is."""
    return {"worked_in_user": user.id}


_KNOWN = "directory.visible_entity_ids"  # transaction.cache: (user id, ids) read by a statement of the transaction


def visible_entity_ids(session, user: User) -> set[int] | None:
    """Entities a staff user works in (memberships and their children); None means all (admin). One query, or none
    when this transaction read them already (`known_entity_ids`)."""
    if user.is_admin:
        return None
    if not user.is_staff:
        return set()
    known = transaction.cache(session).get(_KNOWN)
    if known is not None and known[0] == user.id:
        return set(known[1])
    return set(session.scalars(_WORKED_IN, scope_params(user)))


def known_entity_ids(session, user: User, entity_ids) -> None:
    """`entity_ids`, the `worked_in` of `user` read by a statement of this transaction (the API's token lookup), are
    what `visible_entity_ids` answers until the transaction ends: the transaction changes no membership (a request of
    the API), and the next one reads them again, so a changed membership counts from the next request."""
    transaction.cache(session)[_KNOWN] = (user.id, frozenset(entity_ids))


def visible_entities(session, user: User) -> list[Entity]:
    """Entities the user may pick in filters and forms, by name."""
    query = select(Entity).order_by(Entity.name)
    ids = visible_entity_ids(session, user)
    if ids is not None:
        query = query.where(Entity.id.in_(ids))
    return list(session.scalars(query))


def scope_tickets(query, session, user: User):
    """Restrict a select over Ticket to what `user` may see."""
    return scope_to_entities(query, user, None if user.is_customer else visible_entity_ids(session, user))


def scope_to_entities(query, user: User, entity_ids: set[int] | None):
    """`scope_tickets` with the user's `visible_entity_ids` read already (once for many queries of one page)."""
    if user.is_customer:
        return query.where(Ticket.customer_id == user.id)
    if entity_ids is None:
        return query
    return query.where(Ticket.entity_id.in_(entity_ids)) if entity_ids else query.where(false())


def scope_in_sql(query, user: User):
    """`scope_tickets` with the scope computed by the database inside the query (`worked_in`), for a query that
    finds tickets by something selective (a number): no statement of its own. Execute it with `scope_params(user)`
    (without them it fails: a value is required for the parameter), so one statement serves every user of a kind.
    A list keeps `scope_tickets`' literal ids, which let the planner weigh how many tickets an entity has."""
    if user.is_customer:
        return query.where(Ticket.customer_id == bindparam("worked_in_user"))
    if user.is_admin:
        return query
    if not user.is_staff:
        return query.where(false())
    return query.where(Ticket.entity_id.in_(_WORKED_IN))


# find_ticket's two statements (by number, by an old number), per kind of user and loader options: built once each
# (building them cost more than running them). Options are a caller's constant tuple.
_FIND = Built(64)


def _find_statements(user: User, options: tuple) -> tuple:
    kind = "customer" if user.is_customer else "admin" if user.is_admin else "staff" if user.is_staff else "none"

    def build():
        number = bindparam("number")
        moved = select(TicketAlias.ticket_id).where(TicketAlias.number == number).scalar_subquery()
        return tuple(scope_in_sql(select(Ticket).where(condition), user).options(*options)
                     for condition in (Ticket.number == number, Ticket.id == moved))
    return _FIND.get((kind, options), build)


def find_ticket(session, user: User, number: str, options: tuple = ()) -> Ticket | None:
    """The ticket with this number, or that had it before it moved, if `user` may see it, else None: one statement
    (the scope within it), two for an old number. `options`: loader options (relations the caller reads), a tuple
    built once (a module's constant)."""
    by_number, by_old_number = _find_statements(user, tuple(options))
    params = {**scope_params(user), "number": number.upper()}
    ticket = session.scalars(by_number, params).first()
    if ticket is None:
        ticket = session.scalars(by_old_number, params).first()
    return ticket


def can_work_entity(session, user: User, entity: Entity) -> bool:
    """Staff who may see and change tickets of this entity."""
    ids = visible_entity_ids(session, user)
    return user.is_staff and (ids is None or entity.id in ids)


def is_member(session, user: User, entity: Entity) -> bool:
    """A membership in the entity or one of its ancestors (admins need one too to be assignees)."""
    covering = {e.id for e in lineage(session, entity)}
    return any(m.entity_id in covering for m in user.memberships)


def members_of(session, entity: Entity) -> list[User]:
    """Active staff who can be assigned tickets of this entity, by name."""
    covering = [e.id for e in lineage(session, entity)]
    query = (
        select(User)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.entity_id.in_(covering), User.active.is_(True), User.kind == "staff")
        .distinct()
        .order_by(User.name)
    )
    return list(session.scalars(query))


def visible_entity(session, user: User, slug: str | None) -> Entity | None:
    """The entity with this slug if `user` works in it (staff: theirs and their departments; admins any), else None:
    one the user may not see is answered as one that does not exist."""
    if not slug or not user.is_staff:
        return None
    entity = session.scalar(select(Entity).where(Entity.slug == slug.lower()))
    ids = visible_entity_ids(session, user) if entity is not None else set()
    return entity if entity is not None and (ids is None or entity.id in ids) else None
