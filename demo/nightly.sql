-- demo/nightly.sql: one night's new treatments in the lake (100 rows,
-- continuing the deterministic series after the newest one).
INSERT INTO lake.treatments
SELECT i AS treatment_id,
       1 + (i * 37) % 2000 AS patient_id,
       1 + (i * 11) % 12 AS trial_id,
       date '2025-12-01' + i % 30 AS started_on,
       ((i * 53) % 9) * 25 AS dose_mg,
       (ARRAY['responded', 'stable', 'progressed'])[1 + (i + i / 12) % 3] AS outcome,
       (i * 31 + i / 7) % 17 = 0 AS adverse_event
FROM generate_series((SELECT max(treatment_id) + 1 FROM lake.treatments),
                     (SELECT max(treatment_id) + 100 FROM lake.treatments)) AS i;
