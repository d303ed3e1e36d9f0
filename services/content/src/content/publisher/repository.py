"""The publisher's one statement: claim due posts, mark them published, write their events and webhooks.

Publishing is the hot path (100,000 posts due at once), so the whole batch is one set-based statement and
Python never touches a post: the claim (`FOR UPDATE SKIP LOCKED`), the status change, one `post.published`
outbox row per post and the webhook deliveries of subscribed endpoints are data-modifying CTEs that
commit or roll back together with the caller's transaction.

The outbox row is the one the runtime's `Outbox` writes (`id, aggregatetype = topic, aggregateid =
merchant_id:subject, type, payload = the whole envelope, headers`), and the payload is the JSON of a
`meadow_contracts.Envelope` wrapping a `PostPublished`; tests decode every published event to hold
both to that.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# A UUIDv7 made in SQL (Postgres 15 has no uuidv7()): the 48-bit Unix time in milliseconds over the first
# six bytes of a random v4 UUID, version nibble turned from 4 into 7; the variant bits stay RFC 4122.
# Time-ordered like `new_event_id()`, so outbox and delivery ids index the same way.
_UUID7 = """encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
        placing substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
        FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid"""

# The random bytes of one UUIDv7 cost ~4 µs (the strong random source), a batch has thousands of rows:
# one is drawn per statement and each row's id is that UUID with its last four bytes advanced by the
# row's number, as RFC 9562 §6.2 (method 2) allows. Version, variant, timestamp and 42 random bits stay
# as drawn, and the ids of one statement differ by construction. (The rewards service numbers the
# events of its ingest function the same way, migration 0007.)
_ONE_DRAW = f"""SELECT one.bytes,
               ('x' || encode(substring(one.bytes FROM 13 FOR 4), 'hex'))::bit(32)::bigint AS tail
        FROM (SELECT uuid_send({_UUID7}) AS bytes) AS one"""


def _numbered_id(draw: str, number: str) -> str:
    """The id of row `number` (an SQL expression) from the one-row CTE `draw` made by `_ONE_DRAW`."""
    tail = f"(({draw}.tail + {number}) % 4294967296 - 2147483648)::int"
    return f"encode(overlay({draw}.bytes PLACING int4send({tail}) FROM 13 FOR 4), 'hex')::uuid"


PUBLISH_SQL = text(
    f"""
    WITH event_draw AS MATERIALIZED ({_ONE_DRAW}
    ), delivery_draw AS MATERIALIZED ({_ONE_DRAW}
    ), claimed AS (
        SELECT id FROM posts
        WHERE status = 'scheduled' AND publish_at <= :now
        ORDER BY publish_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    ), published AS (
        -- An array, not a join: the planner estimates a join against the whole table and hashes a
        -- sequential scan of it (17 ms of a 100,000-post table per batch); the array takes the pkey.
        UPDATE posts AS p SET status = 'published', published_at = :now, updated_at = :now
        WHERE p.id = ANY(ARRAY(SELECT id FROM claimed))
        RETURNING p.id, p.merchant_id, p.kind, p.title, p.group_ids, p.segment_ids, p.campaign_id,
                  p.min_tier_rank, p.schedule_kind
    ), envelopes AS (
        SELECT
            id AS post_id, merchant_id, schedule_kind, event_id,
            json_build_object(
                'id', event_id,
                'type', CAST(:event_type AS text),
                'source', CAST(:source AS text),
                'time', CAST(:emitted_at AS text),
                'merchant_id', merchant_id,
                'subject', id::text,
                'data', json_build_object(
                    'post_id', id,
                    'kind', kind,
                    'title', title,
                    'group_ids', to_json(group_ids),
                    'segment_ids', to_json(segment_ids),
                    'campaign_id', campaign_id,
                    'min_tier_rank', min_tier_rank,
                    'published_at', CAST(:published_at AS text)
                )
            ) AS payload
        FROM (
            SELECT published.*, {_numbered_id("event_draw", "row_number() OVER ()")} AS event_id
            FROM published, event_draw
        ) AS with_ids
    ), outbox_rows AS (
        INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload, headers)
        SELECT event_id, :topic, merchant_id || ':' || post_id::text, :event_type, payload,
               CAST(:headers AS json)
        FROM envelopes
    ), deliveries AS (
        INSERT INTO webhook_deliveries (id, merchant_id, endpoint_id, event_id, event_type, payload)
        SELECT {_numbered_id("delivery_draw", "row_number() OVER ()")}, e.merchant_id, e.id,
               envelopes.event_id, :event_type, envelopes.payload
        FROM envelopes
        JOIN webhook_endpoints AS e
          ON e.merchant_id = envelopes.merchant_id AND e.active
         AND CAST(:event_type AS text) = ANY(e.event_types)
        CROSS JOIN delivery_draw
        ON CONFLICT DO NOTHING
    )
    SELECT count(*) AS published,
           coalesce(array_agg(post_id) FILTER (WHERE schedule_kind = 'cron'), '{{}}') AS cron_post_ids,
           coalesce(array_agg(merchant_id) FILTER (WHERE schedule_kind = 'cron'), '{{}}') AS cron_merchant_ids
    FROM envelopes
    """
)


class PublisherRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def publish_due(
        self,
        *,
        now: datetime,
        limit: int,
        event_type: str,
        topic: str,
        source: str,
        emitted_at: str,
        published_at: str,
        headers: str,
    ) -> tuple[int, list[tuple[str, UUID]]]:
        """Publish up to `limit` due posts; returns how many, and the (merchant, post) of cron occurrences.

        `emitted_at` and `published_at` come already in the envelope's JSON form, so every event carries
        exactly the timestamps pydantic would have written.
        """
        result = await self._session.execute(
            PUBLISH_SQL,
            {
                "now": now,
                "limit": limit,
                "event_type": event_type,
                "topic": topic,
                "source": source,
                "emitted_at": emitted_at,
                "published_at": published_at,
                "headers": headers,
            },
        )
        row = result.one()
        return int(row.published), list(zip(row.cron_merchant_ids, row.cron_post_ids, strict=True))
