-- A singular test: it returns the failing rows. Adverse events are
-- reported for adult patients only.
select a.treatment_id, p.patient_id, p.age
from {{ ref('adverse_events') }} a
join {{ ref('stg_patients') }} p using (patient_id)
where p.age < {{ var('min_age') }}
