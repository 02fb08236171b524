-- Tags are listed in the spec's lexical (case-insensitive) order.
CREATE INDEX tags_lexical ON tags(repository_id, LOWER(name), name);
