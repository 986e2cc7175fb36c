-- Patients with their age at the cut-off date; one row per patient.
select
    patient_id,
    patient_code,
    sex,
    birth_date,
    date_part('year', age(date '2026-01-01', birth_date))::int as age,
    upper(site) as site
from {{ ref('raw_patients') }}
