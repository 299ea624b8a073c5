"""Domain logic. Services take a session, the acting user and `now`; they never touch `flask.request`.

They flush but do not commit: the caller (a route or a job) commits once, so a change, its
audit rows and everything later features add to it land in one transaction.
"""
