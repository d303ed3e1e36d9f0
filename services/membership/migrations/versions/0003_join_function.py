"""`membership_take_seat`: the contended part of a join as one server-side call.

Joins to one group queue on its current sub-group's row. Holding that row lock across client round trips
(seat, outbox insert, commit, each waiting for a busy event loop) made the lock hold time, not Postgres,
the limit. This function does everything after the eligibility decision in one call: the customer's
advisory lock, the re-checks that lock guards (already a member, blocked), the seat, the membership and
its `member.joined` outbox row. Called on its own it is its own transaction, so the seat's row lock is
held only inside Postgres.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# VOLATILE (the default) on purpose: under READ COMMITTED every statement in the body takes a fresh
# snapshot, so the re-checks after the advisory lock see what a previous holder of the lock committed.
# The seat UPDATE re-checks `member_count < capacity` on the row's newest version after any wait, so it
# never overfills; 'no_seat' means every sub-group is full (the caller opens the next one or refuses). The event's sub-group fields are only known here; the caller passes the whole envelope as
# `member.joined` would be written by the runtime's Outbox and the two fields are set in place.
UPGRADE = """
CREATE FUNCTION membership_take_seat(
    p_merchant text, p_group uuid, p_customer text, p_route text, p_invite uuid,
    p_membership uuid, p_joined_at timestamptz,
    p_event uuid, p_topic text, p_key text, p_type text, p_envelope jsonb, p_headers jsonb,
    OUT o_outcome text, OUT o_membership uuid, OUT o_subgroup uuid, OUT o_number integer,
    OUT o_route text, OUT o_invite uuid, OUT o_joined_at timestamptz
) LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_merchant || ':' || p_customer, 7));

    SELECT 'existing', m.id, m.subgroup_id, s.number, m.route, m.invite_id, m.joined_at
      INTO o_outcome, o_membership, o_subgroup, o_number, o_route, o_invite, o_joined_at
      FROM memberships m JOIN subgroups s ON s.id = m.subgroup_id
     WHERE m.merchant_id = p_merchant AND m.group_id = p_group AND m.customer_id = p_customer
       AND m.ended_at IS NULL;
    IF FOUND THEN
        RETURN;
    END IF;

    IF EXISTS (SELECT 1 FROM blacklist b WHERE b.merchant_id = p_merchant AND b.customer_id = p_customer) THEN
        o_outcome := 'blacklisted';
        RETURN;
    END IF;

    -- The group row first (the lock order everywhere: customer, group, sub-group): every seat taker
    -- queues here, so the lowest sub-group with room read next is still that when the UPDATE runs, and
    -- a call that finds every sub-group full holds no sub-group row. While a slow-path join opens the
    -- next sub-group it holds this lock, and calls queued here then find the new sub-group.
    PERFORM 1 FROM groups g WHERE g.merchant_id = p_merchant AND g.id = p_group FOR NO KEY UPDATE;

    UPDATE subgroups s SET member_count = s.member_count + 1
     WHERE s.id = (SELECT f.id FROM subgroups f
                    WHERE f.merchant_id = p_merchant AND f.group_id = p_group AND f.member_count < f.capacity
                    ORDER BY f.number LIMIT 1)
       AND s.member_count < s.capacity
    RETURNING s.id, s.number INTO o_subgroup, o_number;
    IF NOT FOUND THEN
        o_outcome := 'no_seat';
        RETURN;
    END IF;

    INSERT INTO memberships (id, merchant_id, group_id, subgroup_id, customer_id, route, invite_id, joined_at)
    VALUES (p_membership, p_merchant, p_group, o_subgroup, p_customer, p_route, p_invite, p_joined_at);

    INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload, headers)
    VALUES (p_event, p_topic, p_key, p_type,
            jsonb_set(jsonb_set(p_envelope, '{data,subgroup_id}', to_jsonb(o_subgroup::text)),
                      '{data,subgroup_number}', to_jsonb(o_number)),
            p_headers);

    o_outcome := 'joined';
    o_membership := p_membership;
    o_route := p_route;
    o_invite := p_invite;
    o_joined_at := p_joined_at;
END
$$;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION membership_take_seat(text, uuid, text, text, uuid, uuid, timestamptz, uuid, text, text, "
        "text, jsonb, jsonb)"
    )
