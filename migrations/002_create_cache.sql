-- migrate:up
-- The table whose absence took an API down when migrations never ran on deploy.
CREATE TABLE cache (
    cache_key VARCHAR(255) NOT NULL PRIMARY KEY,
    cache_value TEXT NOT NULL,
    expiration INTEGER NOT NULL
);
CREATE INDEX cache_expiration_index ON cache (expiration);

-- migrate:down
DROP TABLE cache;
