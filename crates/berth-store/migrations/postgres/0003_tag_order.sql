-- PostgreSQL version of migrations/sqlite/0003_tag_order.sql (BIGINT integers, BYTEA
-- bytes, identity columns, byte-order "C" collation on text so ordering and
-- pagination match SQLite's).
-- Tags are listed in the spec's lexical (case-insensitive) order.
CREATE INDEX tags_lexical ON tags(repository_id, LOWER(name), name);
