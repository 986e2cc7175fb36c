-- Ephemeral: inlined as a CTE into the marts that use it, never built.
select t.*, p.age, p.site
from {{ ref('stg_treatments') }} t
join {{ ref('stg_patients') }} p using (patient_id)
where p.age >= {{ var('min_age') }}
