-- Upload sessions on object storage (S3, Azure Blob): the state another
-- replica needs to continue a session without re-reading its bytes.
-- NULL / 0 on the filesystem backend, whose state is the upload file.
ALTER TABLE uploads ADD COLUMN multipart_id TEXT;
ALTER TABLE uploads ADD COLUMN parts TEXT NOT NULL DEFAULT '[]';
ALTER TABLE uploads ADD COLUMN tail_key TEXT;
ALTER TABLE uploads ADD COLUMN tail_size BIGINT NOT NULL DEFAULT 0;
ALTER TABLE uploads ADD COLUMN hash_state BYTEA;
