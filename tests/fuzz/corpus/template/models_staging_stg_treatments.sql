select
    treatment_id,
    patient_id,
    trial_id,
    started_on,
    dose_mg,
    outcome,
    adverse_event
from {{ ref('raw_treatments') }}
where dose_mg > 0
