select
    p.patient_id,
    p.patient_code,
    p.sex,
    p.age,
    p.site,
    count(distinct t.trial_id) as trials_enrolled,
    count(v.variant_id) filter (where v.is_tracked) as tracked_variants
from {{ ref('stg_patients') }} p
left join {{ ref('stg_treatments') }} t using (patient_id)
left join {{ ref('stg_variants') }} v using (patient_id)
group by 1, 2, 3, 4, 5
