create schema if not exists lake;
create table lake.customers (id int, region text, name text, tier text, updated_at timestamp);
insert into lake.customers values
  (1, 'eu', 'Ann', 'gold',   '2024-01-01 08:00'),
  (2, 'eu', 'Bo',  'silver', '2024-01-01 09:00'),
  (3, 'eu', 'Cy',  'bronze', '2024-01-01 10:00');
