select
    v.gene,
    p.site,
    count(distinct v.patient_id) as patients,
    round(avg(v.vaf)::numeric, 3) as mean_vaf
from {{ ref('stg_variants') }} v
join {{ ref('dim_patients') }} p using (patient_id)
where v.is_tracked
group by 1, 2
