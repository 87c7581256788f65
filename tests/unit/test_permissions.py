"""Pure permission rules (DATA.md 9.4-9.6, D7, D8a, G-02/G-03/G-05): base and channel resolution
checked exhaustively against a direct transcription of DATA.md 9.5, hierarchy and grant rules,
role renumbering, and Hypothesis properties (owners and administrators hold everything, a deny
overwrite never grants, adding a role never removes a permission)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from hypothesis import given
from hypothesis import strategies as st

from accord.permissions import (
    ADMIN_ROLE_PERMISSIONS,
    ALL_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    INSTANCE_ADMIN_POSITION,
    MODERATOR_ROLE_PERMISSIONS,
    OWNER_POSITION,
    PERMISSION_NAMES,
    Overwrite,
    has_permission,
    hierarchy_position,
    is_permission,
    outranks,
    reorder_positions,
    resolve_base_permissions,
    resolve_channel_permissions,
    ungrantable,
    unknown_permissions,
)

EVERYONE = 1
ROLE_A = 10
ROLE_B = 11
USER = 100
OTHER_USER = 101

# -- vocabulary and defaults -----------------------------------------------------------------


def test_vocabulary_is_the_client_list() -> None:
    assert len(PERMISSION_NAMES) == 39 == len(ALL_PERMISSIONS)
    assert is_permission("manage_soundboard")
    assert not is_permission("fly")
    assert not is_permission(3)


def test_default_role_sets() -> None:
    assert len(DEFAULT_EVERYONE_PERMISSIONS) == 14  # DATA.md 9.3 plus use_soundboard (D7a)
    for name in ("create_invites", "send_messages", "view_channel"):
        assert name in DEFAULT_EVERYONE_PERMISSIONS
    for name in ("manage_space", "manage_channels", "manage_roles", "kick_members", "ban_members"):
        assert name not in DEFAULT_EVERYONE_PERMISSIONS
    assert (
        set(DEFAULT_EVERYONE_PERMISSIONS)
        < set(MODERATOR_ROLE_PERMISSIONS)
        < set(ADMIN_ROLE_PERMISSIONS)
    )
    assert "administrator" not in ADMIN_ROLE_PERMISSIONS
    assert "manage_soundboard" in ADMIN_ROLE_PERMISSIONS


# -- base permissions ------------------------------------------------------------------------


def test_base_is_everyone_plus_roles() -> None:
    base = resolve_base_permissions(
        is_owner=False,
        is_instance_admin=False,
        everyone_permissions=["view_channel"],
        role_permissions=[["send_messages"], ["kick_members", "not_a_permission"]],
    )
    assert base == {"view_channel", "send_messages", "kick_members"}


def test_owner_admin_and_administrator_hold_everything() -> None:
    for owner, admin, roles in [
        (True, False, []),
        (False, True, []),
        (False, False, [["administrator"]]),
    ]:
        base = resolve_base_permissions(
            is_owner=owner, is_instance_admin=admin, everyone_permissions=[], role_permissions=roles
        )
        assert base == ALL_PERMISSIONS


def test_has_permission() -> None:
    assert has_permission({"view_channel"}, "view_channel")
    assert not has_permission({"view_channel"}, "send_messages")
    assert has_permission({"administrator"}, "ban_members")


# -- channel permissions: exhaustive against DATA.md 9.5 ------------------------------------


def _oracle(
    base: frozenset[str],
    overwrites: Iterable[Overwrite],
    held_roles: frozenset[int],
    user_id: int | None,
) -> frozenset[str]:
    """DATA.md 9.5 step by step, written independently of the implementation."""
    if "administrator" in base:
        return ALL_PERMISSIONS
    result = set(base)
    overwrites = list(overwrites)
    for o in overwrites:
        if o.type == "role" and o.target_id == EVERYONE:
            result -= o.deny
            result |= o.allow
    allow: set[str] = set()
    deny: set[str] = set()
    for o in overwrites:
        if o.type == "role" and o.target_id != EVERYONE and o.target_id in held_roles:
            allow |= o.allow
            deny |= o.deny
    result -= deny - allow
    result |= allow
    for o in overwrites:
        if o.type == "member" and user_id is not None and o.target_id == user_id:
            result -= o.deny
            result |= o.allow
    result.discard("administrator")
    return frozenset(result)


_NAMES = ("view_channel", "send_messages")
_SUBSETS = [frozenset(c) for n in range(3) for c in itertools.combinations(_NAMES, n)]
_PAIRS = [(a, d) for a in _SUBSETS for d in _SUBSETS]


def test_channel_resolution_matches_data_md_exhaustively() -> None:
    checked = 0
    for base, (ea, ed), (ra, rd), (ma, md), held in itertools.product(
        _SUBSETS, _PAIRS, _PAIRS, _PAIRS, (frozenset(), frozenset({ROLE_A}))
    ):
        overwrites = [
            Overwrite(EVERYONE, "role", ea, ed),
            Overwrite(ROLE_A, "role", ra, rd),
            Overwrite(USER, "member", ma, md),
        ]
        got = resolve_channel_permissions(
            base,
            everyone_role_id=EVERYONE,
            member_role_ids=held,
            user_id=USER,
            overwrites=overwrites,
        )
        assert got == _oracle(base, overwrites, held, USER), (base, overwrites, held)
        checked += 1
    assert checked == 4 * 16 * 16 * 16 * 2


def test_channel_resolution_examples() -> None:
    base = frozenset({"view_channel", "send_messages"})

    def resolve(
        *overwrites: Overwrite, held: Iterable[int] = (ROLE_A, ROLE_B), user: int | None = USER
    ) -> frozenset[str]:
        return resolve_channel_permissions(
            base,
            everyone_role_id=EVERYONE,
            member_role_ids=frozenset(held),
            user_id=user,
            overwrites=overwrites,
        )

    f = frozenset
    # @everyone deny hides; a held role's allow restores; the member's deny wins last.
    hide = Overwrite(EVERYONE, "role", f(), f({"view_channel"}))
    show = Overwrite(ROLE_A, "role", f({"view_channel"}), f())
    block = Overwrite(USER, "member", f(), f({"view_channel"}))
    assert "view_channel" not in resolve(hide)
    assert "view_channel" in resolve(hide, show)
    assert "view_channel" not in resolve(hide, show, block)
    # Allow beats deny across roles.
    deny_b = Overwrite(ROLE_B, "role", f(), f({"view_channel"}))
    assert "view_channel" in resolve(show, deny_b)
    assert "view_channel" not in resolve(deny_b)
    # Overwrites of roles not held, or of other members, do nothing; nor do member overwrites
    # for callers resolved without a user (non-members of a public space).
    assert resolve(deny_b, held=()) == base
    assert resolve(Overwrite(OTHER_USER, "member", f(), f({"view_channel"}))) == base
    assert resolve(block, user=None) == base
    # Overwrites never grant administrator; administrator in the base ignores overwrites.
    assert "administrator" not in resolve(Overwrite(USER, "member", f({"administrator"}), f()))
    admin = resolve_channel_permissions(
        f({"administrator"}),
        everyone_role_id=EVERYONE,
        member_role_ids=f(),
        user_id=USER,
        overwrites=[block],
    )
    assert admin == ALL_PERMISSIONS


# -- hierarchy and grants --------------------------------------------------------------------


def test_hierarchy_positions() -> None:
    assert (
        hierarchy_position(is_owner=True, is_instance_admin=True, highest_role=3) == OWNER_POSITION
    )
    assert (
        hierarchy_position(is_owner=False, is_instance_admin=True, highest_role=3)
        == INSTANCE_ADMIN_POSITION
    )
    assert hierarchy_position(is_owner=False, is_instance_admin=False, highest_role=3) == 3
    assert outranks(3, 2)
    assert not outranks(2, 2)
    assert not outranks(1, 2)
    assert outranks(INSTANCE_ADMIN_POSITION, 10_000)
    assert not outranks(INSTANCE_ADMIN_POSITION, OWNER_POSITION)  # D8a
    assert not outranks(OWNER_POSITION, OWNER_POSITION)  # the owner never acts on themselves


def test_grants_and_unknown_names() -> None:
    held = frozenset({"view_channel", "kick_members"})
    assert ungrantable(held, ["view_channel"]) == []
    assert ungrantable(held, ["ban_members", "administrator", "ban_members"]) == [
        "ban_members",
        "administrator",
    ]
    assert ungrantable(ALL_PERMISSIONS, ["administrator"]) == []
    assert unknown_permissions(["view_channel", "fly", "fly", "swim"]) == ["fly", "swim"]
    assert unknown_permissions(PERMISSION_NAMES) == []


def test_reorder_positions_examples() -> None:
    current = {EVERYONE: 0, 20: 1, 21: 2, 22: 3}
    assert reorder_positions(current, {22: 1}, everyone_id=EVERYONE) == {
        EVERYONE: 0,
        22: 1,
        20: 2,
        21: 3,
    }
    assert reorder_positions(current, {20: 2}, everyone_id=EVERYONE) == {
        EVERYONE: 0,
        21: 1,
        20: 2,
        22: 3,
    }
    assert reorder_positions(current, {}, everyone_id=EVERYONE) == current
    # Gaps close up; @everyone stays at 0.
    assert reorder_positions({EVERYONE: 0, 20: 4, 21: 9}, {}, everyone_id=EVERYONE) == {
        EVERYONE: 0,
        20: 1,
        21: 2,
    }


# -- properties ------------------------------------------------------------------------------

names = st.frozensets(st.sampled_from(PERMISSION_NAMES))
role_lists = st.lists(names, max_size=4)


@st.composite
def overwrite_sets(draw: st.DrawFn) -> list[Overwrite]:
    targets = draw(
        st.lists(
            st.sampled_from(
                [
                    (EVERYONE, "role"),
                    (ROLE_A, "role"),
                    (ROLE_B, "role"),
                    (USER, "member"),
                    (OTHER_USER, "member"),
                ]
            ),
            unique=True,
        )
    )
    return [Overwrite(t, kind, draw(names), draw(names)) for t, kind in targets]


held_roles = st.frozensets(st.sampled_from([ROLE_A, ROLE_B]))


@given(
    everyone=names,
    roles=role_lists,
    overwrites=overwrite_sets(),
    held=held_roles,
    admin_role=st.booleans(),
)
def test_owner_and_administrator_resolve_to_everything(
    everyone: frozenset[str],
    roles: list[frozenset[str]],
    overwrites: list[Overwrite],
    held: frozenset[int],
    admin_role: bool,
) -> None:
    for is_owner, is_admin, extra in [
        (True, False, []),
        (False, True, []),
        (False, False, [frozenset({"administrator"})]),
    ]:
        base = resolve_base_permissions(
            is_owner=is_owner,
            is_instance_admin=is_admin,
            everyone_permissions=everyone,
            role_permissions=[*roles, *extra],
        )
        assert base == ALL_PERMISSIONS
        channel = resolve_channel_permissions(
            base,
            everyone_role_id=EVERYONE,
            member_role_ids=held,
            user_id=USER,
            overwrites=overwrites,
        )
        assert channel == ALL_PERMISSIONS
        assert all(has_permission(channel, name) for name in PERMISSION_NAMES)


@given(base=names, overwrites=overwrite_sets(), held=held_roles, denied=names, data=st.data())
def test_a_deny_overwrite_never_grants(
    base: frozenset[str],
    overwrites: list[Overwrite],
    held: frozenset[int],
    denied: frozenset[str],
    data: st.DataObject,
) -> None:
    used = {o.target_id for o in overwrites}
    free = [
        t
        for t in ((EVERYONE, "role"), (ROLE_A, "role"), (ROLE_B, "role"), (USER, "member"))
        if t[0] not in used
    ]
    base = base - {"administrator"}
    before = resolve_channel_permissions(
        base, everyone_role_id=EVERYONE, member_role_ids=held, user_id=USER, overwrites=overwrites
    )
    if free:
        target, kind = data.draw(st.sampled_from(free))
        extra = Overwrite(target, kind, frozenset(), denied)
        after = resolve_channel_permissions(
            base,
            everyone_role_id=EVERYONE,
            member_role_ids=held,
            user_id=USER,
            overwrites=[*overwrites, extra],
        )
        assert after <= before
    # Emptying the allow side of any existing overwrite never grants either.
    for index, overwrite in enumerate(overwrites):
        stripped = [
            *overwrites[:index],
            Overwrite(overwrite.target_id, overwrite.type, frozenset(), overwrite.deny),
            *overwrites[index + 1 :],
        ]
        after = resolve_channel_permissions(
            base, everyone_role_id=EVERYONE, member_role_ids=held, user_id=USER, overwrites=stripped
        )
        assert after <= before


@given(
    everyone=names, roles=role_lists, new_role=names, overwrites=overwrite_sets(), held=held_roles
)
def test_adding_a_role_never_removes_a_permission(
    everyone: frozenset[str],
    roles: list[frozenset[str]],
    new_role: frozenset[str],
    overwrites: list[Overwrite],
    held: frozenset[int],
) -> None:
    def base_of(role_permissions: list[frozenset[str]]) -> frozenset[str]:
        return resolve_base_permissions(
            is_owner=False,
            is_instance_admin=False,
            everyone_permissions=everyone,
            role_permissions=role_permissions,
        )

    before, after = base_of(roles), base_of([*roles, new_role])
    assert before <= after
    # In a channel too, for a new role without an overwrite there (id 12 has none).
    channel_before = resolve_channel_permissions(
        before, everyone_role_id=EVERYONE, member_role_ids=held, user_id=USER, overwrites=overwrites
    )
    channel_after = resolve_channel_permissions(
        after,
        everyone_role_id=EVERYONE,
        member_role_ids=held | {12},
        user_id=USER,
        overwrites=overwrites,
    )
    assert channel_before <= channel_after


@given(
    positions=st.lists(st.integers(min_value=1, max_value=20), min_size=1, max_size=8),
    moves=st.dictionaries(
        st.integers(min_value=0, max_value=7), st.integers(min_value=1, max_value=20), max_size=4
    ),
)
def test_reorder_is_dense_and_keeps_unmoved_order(
    positions: list[int], moves: dict[int, int]
) -> None:
    current = {EVERYONE: 0, **{100 + i: p for i, p in enumerate(positions)}}
    requested = {100 + i: p for i, p in moves.items() if 100 + i in current}
    result = reorder_positions(current, requested, everyone_id=EVERYONE)
    assert result[EVERYONE] == 0
    assert sorted(v for k, v in result.items() if k != EVERYONE) == list(
        range(1, len(positions) + 1)
    )
    unmoved = sorted(
        (k for k in current if k != EVERYONE and k not in requested), key=lambda k: (current[k], k)
    )
    assert sorted(unmoved, key=lambda k: result[k]) == unmoved
