select * from {{ ref('stg_visits') }}
