select
    trial_id,
    trial_name,
    phase,
    lower(drug) as drug
from {{ source('lake', 'trials') }}
