with orders as (
    select customer_id, count(*) as number_of_orders, sum(amount) as total_amount
    from {{ ref('stg_orders') }}
    group by 1
)
select c.customer_id, c.first_name, c.last_name,
       coalesce(o.number_of_orders, 0) as number_of_orders,
       coalesce(o.total_amount, 0) as total_amount
from {{ ref('stg_customers') }} c
left join orders o using (customer_id)
