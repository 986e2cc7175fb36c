{{ config(materialized='unload', connection='lake', stage_retention=3) }}
select * from {{ source('lake', 'patients') }}
