select
    trial_id,
    trial_name,
    phase,
    lower(drug) as drug
from {{ ref('raw_trials') }}
