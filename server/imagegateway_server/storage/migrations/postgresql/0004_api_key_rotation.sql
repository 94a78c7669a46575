-- Gateway-key rotation keeps the key's id and gives it a new secret; the secret it replaced stays
-- accepted until previous_key_expire_time (a grace for rolling the new one out). The previous hash is
-- kept after its grace, until the next rotation, so a retired secret is recognised and named as such.

ALTER TABLE api_keys ADD COLUMN previous_key_hash TEXT;
ALTER TABLE api_keys ADD COLUMN previous_key_expire_time BIGINT;
ALTER TABLE api_keys ADD COLUMN rotate_time BIGINT;

-- Authentication looks a secret up as either hash; NULLs do not collide in a unique index.
CREATE UNIQUE INDEX api_keys_by_previous_hash ON api_keys (previous_key_hash);
