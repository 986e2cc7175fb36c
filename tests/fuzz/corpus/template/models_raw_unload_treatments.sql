{{ config(materialized='unload', connection='lake', stage_retention=3) }}
-- Only treatments past the warehouse's newest one cross the wire after the first night.
select * from {{ source('lake', 'treatments') }}
{% if is_incremental() %}where treatment_id > {{ watermark }}{% endif %}
