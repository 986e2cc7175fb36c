{{ config(materialized='incremental', unique_key='treatment_id') }}
-- Incremental: only treatments newer than what the table holds are merged.
select treatment_id, patient_id, trial_id, started_on, dose_mg, site
from {{ ref('int_adult_treatments') }}
where adverse_event
{% if is_incremental() %}
  and started_on > (select coalesce(max(started_on), date '1900-01-01') from {{ this }})
{% endif %}
