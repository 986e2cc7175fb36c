select id as order_id, user_id as customer_id, order_date, status, amount
from {{ ref('raw_orders') }}
where amount >= {{ var('min_amount') }}
