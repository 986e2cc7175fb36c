{% snapshot customers_ts %}
{{ config(unique_key='id', strategy='timestamp', updated_at='updated_at',
          invalidate_hard_deletes=True) }}
select id, name, tier, updated_at from {{ source('lake', 'customers') }}
{% endsnapshot %}

{% snapshot customers_check %}
{{ config(unique_key=['id', 'region'], strategy='check', check_cols=['tier']) }}
select id, region, name, tier from {{ source('lake', 'customers') }}
{% endsnapshot %}
