"""Membership rules and events shared by every way of joining or leaving a space."""

from __future__ import annotations

from accord.events.types import BusItem, Event, SessionControl
from accord.models.members import Member
from accord.models.users import User


def member_joined(member: Member, user: User) -> list[BusItem]:
    """member.join (Member plus its user, D-ev) and the notice that lets sessions follow it."""
    return [
        SessionControl(kind="membership_changed", user_id=member.user_id, space_id=member.space_id),
        Event(
            type="member.join",
            data=member.to_wire(user.to_wire(viewer_id=0)),
            space_id=member.space_id,
            user_ids=frozenset({member.user_id}),
        ),
    ]
