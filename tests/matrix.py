"""Helpers for permission-matrix rows; each area adds its rows in tests/<area>/matrix.py.

An area's matrix module defines PAGES and API, lists of (id, method, path, data, expected by role),
and may define setup(world) -> dict of ids that paths use as {placeholders}.
"""

ROLES = ["anonymous", "outsider", "viewer", "operator", "builder", "owner", "auditor", "admin"]
LOGIN = 302  # a page redirects anonymous visitors to the sign-in page


def everyone(status, anonymous=LOGIN, **overrides):
    answer = {role: status for role in ROLES}
    answer["anonymous"] = anonymous
    answer.update(overrides)
    return answer


TEAM_MEMBERS_ONLY = dict(outsider=404)
ONLY_READERS_OF_AUDIT = dict(outsider=403, viewer=403, operator=403, builder=403, owner=403)
