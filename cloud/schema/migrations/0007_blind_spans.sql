-- What a camera could not judge in a frame (locowatch.v1.BlindSpan): per position
-- estimation, stretches hidden behind something nearer or out of view, one array
-- element each. Gateways before 0.2 send none: the defaults say "saw all it covered".
-- The FSE's replay after a restart reads them back, so a restored state fuses the same.
-- depends: 0006_retention_cutoffs

ALTER TABLE position_estimations
    ADD COLUMN blind_start_m real[] NOT NULL DEFAULT '{}',
    ADD COLUMN blind_end_m   real[] NOT NULL DEFAULT '{}',
    ADD COLUMN blind_hidden  boolean[] NOT NULL DEFAULT '{}';  -- false: out of view
