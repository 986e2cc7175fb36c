{{ config(materialized='load') }}
{{ ref('unload_trials') }}
