-- A virtual key's credential is typed: its secret fields are sealed together, as one JSON object, in
-- sealed_secret; its public fields (a region, a project, a resource name) are kept readable here as a
-- JSON object. NULL marks a row written before: its sealed_secret is the bare api_key.

ALTER TABLE virtual_keys ADD COLUMN public_credential_fields TEXT;
