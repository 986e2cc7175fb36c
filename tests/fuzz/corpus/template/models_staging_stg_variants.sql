{% set tracked_genes = ['TP53', 'KRAS', 'EGFR', 'BRAF', 'PIK3CA'] %}
select
    variant_id,
    patient_id,
    gene,
    chrom,
    pos,
    ref,
    alt,
    vaf,
    gene in ({% for g in tracked_genes %}'{{ g }}'{% if not loop.last %}, {% endif %}{% endfor %}) as is_tracked
from {{ ref('raw_variants') }}
where vaf >= 0.05
