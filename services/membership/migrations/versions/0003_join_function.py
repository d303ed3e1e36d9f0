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
# never overfills; 'no_seat' means the set is full (the caller's slow path refuses, or seats the
# customer if a seat freed meanwhile). The event's sub-group fields are only known here; the caller
# passes the whole envelope as the runtime's Outbox would write it and the two fields are set in place.
UPGRADE = """
CREATE FUNCTION membership_take_seat(
    p_merchant text, p_group uuid, p_customer text, p_route text, p_invite uuid,
    p_membership uuid, p_joined_at timestamptz,
    p_event uuid, p_topic text, p_key text, p_type text, p_envelope jsonb, p_headers jsonb,
    p_new_subgroup uuid,
    OUT o_outcome text, OUT o_membership uuid, OUT o_subgroup uuid, OUT o_number integer,
    OUT o_route text, OUT o_invite uuid, OUT o_joined_at timestamptz
) LANGUAGE plpgsql AS $$
DECLARE
    v_capacity integer;
    v_max_subgroups integer;
    v_count integer;
    v_last integer;
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
    -- queues here, so the seats read next are still what they are when the UPDATE or INSERT runs, and a
    -- call that finds the set full holds no sub-group row.
    SELECT g.subgroup_capacity, g.max_subgroups INTO v_capacity, v_max_subgroups
      FROM groups g WHERE g.merchant_id = p_merchant AND g.id = p_group FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        o_outcome := 'no_group';
        RETURN;
    END IF;

    UPDATE subgroups s SET member_count = s.member_count + 1
     WHERE s.id = (SELECT f.id FROM subgroups f
                    WHERE f.merchant_id = p_merchant AND f.group_id = p_group AND f.member_count < f.capacity
                    ORDER BY f.number LIMIT 1)
       AND s.member_count < s.capacity
    RETURNING s.id, s.number INTO o_subgroup, o_number;
    IF NOT FOUND THEN
        -- Every sub-group is full: open the next one, as domain.placement.place decides (numbers stay
        -- dense, so one past the highest), unless the set has all the sub-groups it may have.
        SELECT count(*), COALESCE(max(f.number), 0) INTO v_count, v_last
          FROM subgroups f WHERE f.merchant_id = p_merchant AND f.group_id = p_group;
        IF v_count >= v_max_subgroups THEN
            o_outcome := 'no_seat';
            RETURN;
        END IF;
        o_subgroup := p_new_subgroup;
        o_number := v_last + 1;
        INSERT INTO subgroups (id, merchant_id, group_id, number, capacity, member_count)
        VALUES (o_subgroup, p_merchant, p_group, o_number, v_capacity, 1);
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
        "text, jsonb, jsonb, uuid)"
    )
