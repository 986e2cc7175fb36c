{{ config(materialized='load', watermark='treatment_id') }}
{{ ref('unload_treatments') }}
