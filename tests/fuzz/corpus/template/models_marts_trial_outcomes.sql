{% set outcomes = ['responded', 'stable', 'progressed'] %}
select
    tr.trial_id,
    tr.trial_name,
    tr.drug,
    count(*) as treatments,
{%- for o in outcomes %}
    count(*) filter (where a.outcome = '{{ o }}') as {{ o }}{% if not loop.last %},{% endif %}
{%- endfor %}
from {{ ref('int_adult_treatments') }} a
join {{ ref('stg_trials') }} tr using (trial_id)
group by 1, 2, 3
