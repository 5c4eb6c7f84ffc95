-- Results into plant systems (cloud/plant/): an outbox that loses nothing, and alerts.
-- The FSE writes an outbox row for every event in the same transaction as the event;
-- the plant service writes alert transitions and their outbox rows in one transaction.
-- Each sink (MQTT, a webhook, OPC UA) delivers rows in id order and moves its own
-- cursor only past what its receiver acknowledged; rows every configured sink has passed
-- are deleted. A delivery outage delays, never loses; the key makes a resend harmless.
-- depends: 0007_blind_spans

CREATE TABLE outbox (
    id          bigserial PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    facility_id text NOT NULL,
    flow        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('event', 'alert')),
    key         text NOT NULL,          -- idempotency key: the same message, the same key
    payload     jsonb NOT NULL          -- the message as sent (docs/integration.md)
);
CREATE INDEX outbox_created ON outbox (created_at);

CREATE TABLE outbox_cursors (
    sink       text PRIMARY KEY,        -- mqtt, webhook:NAME, opcua
    last_id    bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Every alert that fired, open (resolved_at NULL) or closed; the dashboard shows the open.
CREATE TABLE alerts (
    id          bigserial PRIMARY KEY,
    facility_id text NOT NULL,
    flow        text NOT NULL,
    rule        text NOT NULL,          -- the rule's name in cloud.yaml
    subject     text NOT NULL,          -- what it is about: a locomotive, camera, gateway
    severity    text NOT NULL,
    message     text NOT NULL,
    fired_at    timestamptz NOT NULL,
    resolved_at timestamptz,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX alerts_open ON alerts (facility_id, flow, rule, subject) WHERE resolved_at IS NULL;
CREATE INDEX alerts_facility_time ON alerts (facility_id, fired_at DESC);

GRANT SELECT, INSERT, DELETE ON outbox TO locowatch_writer;
GRANT USAGE ON SEQUENCE outbox_id_seq, alerts_id_seq TO locowatch_writer;
GRANT SELECT, INSERT, UPDATE ON outbox_cursors, alerts TO locowatch_writer;
GRANT SELECT ON outbox, outbox_cursors, alerts TO locowatch_reader;
