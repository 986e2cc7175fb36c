-- demo/lake.sql: a deterministic synthetic clinical lake. Idempotent:
-- tables are created once, with the same rows every time.
SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS lake;

CREATE TABLE IF NOT EXISTS lake.patients AS
SELECT i AS patient_id,
       'P' || lpad(i::text, 5, '0') AS patient_code,
       (ARRAY['F', 'M'])[1 + i % 2] AS sex,
       date '1940-01-01' + (i * 7919) % 25000 AS birth_date,
       (ARRAY['bos', 'nyc', 'sfo', 'chi', 'sea'])[1 + i % 5] AS site
FROM generate_series(1, 2000) AS i;

CREATE TABLE IF NOT EXISTS lake.trials AS
SELECT i AS trial_id,
       'TRIAL-' || lpad(i::text, 3, '0') AS trial_name,
       1 + i % 3 AS phase,
       (ARRAY['Osimertinib', 'Sotorasib', 'Alpelisib', 'Dabrafenib'])[1 + i % 4] AS drug
FROM generate_series(1, 12) AS i;

CREATE TABLE IF NOT EXISTS lake.treatments AS
SELECT i AS treatment_id,
       1 + (i * 37) % 2000 AS patient_id,
       1 + (i * 11) % 12 AS trial_id,
       date '2024-01-01' + (i * 13) % 700 AS started_on,
       ((i * 53) % 9) * 25 AS dose_mg,
       (ARRAY['responded', 'stable', 'progressed'])[1 + (i + i / 12) % 3] AS outcome,
       (i * 31 + i / 7) % 17 = 0 AS adverse_event
FROM generate_series(1, 10000) AS i;

CREATE TABLE IF NOT EXISTS lake.variants AS
SELECT i AS variant_id,
       1 + (i * 29) % 2000 AS patient_id,
       (ARRAY['TP53', 'KRAS', 'EGFR', 'BRAF', 'PIK3CA', 'APC', 'PTEN', 'ALK'])[1 + (i * 3) % 8] AS gene,
       'chr' || (1 + i % 22) AS chrom,
       1000000 + (i * 7717) % 90000000 AS pos,
       (ARRAY['A', 'C', 'G', 'T'])[1 + i % 4] AS ref,
       (ARRAY['C', 'G', 'T', 'A'])[1 + i % 4] AS alt,
       round((((i * 97) % 1000) / 1000.0)::numeric, 3) AS vaf
FROM generate_series(1, 30000) AS i;
