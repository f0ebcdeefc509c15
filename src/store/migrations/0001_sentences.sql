-- The sentences, with the fields of the sentences-bundle format.
CREATE TABLE sentences (
    uuid        uuid        PRIMARY KEY,
    id          bigint      NOT NULL UNIQUE,
    hitokoto    text        NOT NULL CHECK (hitokoto <> ''),
    type        text        NOT NULL CHECK (type ~ '^[a-l]$'),
    "from"      text        NOT NULL,
    from_who    text,
    creator     text        NOT NULL,
    length      integer     NOT NULL CHECK (length > 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Reads per request (postgres.reads = "query") filter on both.
CREATE INDEX sentences_type_length ON sentences (type, length);

-- Ids of sentences written through the API; bundle ids stay below.
CREATE SEQUENCE sentences_api_id START 1000000000;
