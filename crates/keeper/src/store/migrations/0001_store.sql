-- The keeper store in PostgreSQL: one schema per store (a chain and its signer), the tables of the embedded
-- store with the same meaning. Records are the JSON the embedded store writes; amounts are 32-byte big-endian.

-- Payment key (token 20 bytes, payer 20, nonce 32) -> record. The key is the primary key: the same payment
-- posted to two instances at once is stored once.
CREATE TABLE payments (
    key bytea PRIMARY KEY CHECK (length(key) = 72),
    seq bigint NOT NULL,
    status text NOT NULL CHECK (status IN ('queued', 'submitted', 'settled', 'failed')),
    record jsonb NOT NULL
);
-- The queue: queued payments, oldest first.
CREATE INDEX payments_queued ON payments (seq) WHERE status = 'queued';
CREATE SEQUENCE payment_seq AS bigint MINVALUE 0 START 0;

-- Token (20) and payer (20) -> outstanding (queued and submitted) and ever settled sums.
CREATE TABLE payer_totals (
    payer bytea PRIMARY KEY CHECK (length(payer) = 40),
    outstanding bytea NOT NULL CHECK (length(outstanding) = 32),
    settled bytea NOT NULL CHECK (length(settled) = 32)
);

-- The sender's transactions in flight, by nonce.
CREATE TABLE txs (
    nonce bigint PRIMARY KEY,
    record jsonb NOT NULL
);

CREATE TABLE executions (
    subscription bytea NOT NULL,
    block bigint NOT NULL,
    idx integer NOT NULL,
    record jsonb NOT NULL,
    PRIMARY KEY (subscription, block, idx)
);

CREATE TABLE vouchers (
    channel bytea PRIMARY KEY,
    record jsonb NOT NULL
);
CREATE TABLE channel_taken (
    channel bytea PRIMARY KEY,
    taken bytea NOT NULL CHECK (length(taken) = 32)
);
CREATE TABLE refused_vouchers (channel bytea PRIMARY KEY);
CREATE TABLE refused_payers (payer bytea PRIMARY KEY);
CREATE TABLE watched (channel bytea PRIMARY KEY);
CREATE TABLE meta (name text PRIMARY KEY, value bigint NOT NULL);

-- payment-identifier id -> the fingerprint of its request and its payment key; the primary key binds an id once.
CREATE TABLE payment_ids (
    id text PRIMARY KEY,
    fingerprint bytea NOT NULL CHECK (length(fingerprint) = 32),
    key bytea NOT NULL CHECK (length(key) = 72)
);

CREATE TABLE chain (name text PRIMARY KEY, value bytea NOT NULL);

-- Who sends transactions for this store's signer: one row, taken over once it expires; the token grows with
-- every new holder and fences the writes of an earlier one.
CREATE TABLE lease (
    name text PRIMARY KEY,
    holder text NOT NULL,
    token bigint NOT NULL,
    expires_at timestamptz NOT NULL
);
