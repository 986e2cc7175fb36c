{{ config(materialized='load') }}
{{ ref('unload_variants') }}
