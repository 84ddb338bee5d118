-- RFC 8936 poll delivery: where each subscriber (a service account's client
-- id) stands in the security-event feed. `pos_*` is the last position it
-- acknowledged (NULL: nothing yet, it starts at the oldest event kept) and
-- `pos_at` the time that position stands for (the pruning may overtake it:
-- then it must resynchronise). `batch_*` is the end of the batch delivered and
-- not yet wholly acknowledged, `pending` the JSON array of its unacknowledged
-- jtis: until that array is empty the same SETs are delivered again.
CREATE TABLE ssf_poll_positions (
    client_id  TEXT PRIMARY KEY,
    pos_tx     BIGINT,
    pos_seq    BIGINT,
    pos_at     TIMESTAMPTZ NOT NULL,
    batch_tx   BIGINT,
    batch_seq  BIGINT,
    batch_at   TIMESTAMPTZ,
    pending    TEXT NOT NULL DEFAULT '[]',
    updated_at TIMESTAMPTZ NOT NULL
);
