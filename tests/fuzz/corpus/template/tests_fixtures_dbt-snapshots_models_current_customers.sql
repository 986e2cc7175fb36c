select id, name, tier from {{ ref('customers_ts') }} where dbt_valid_to is null
