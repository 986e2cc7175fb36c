{{ config(materialized='load') }}
{{ ref('unload_patients') }}
