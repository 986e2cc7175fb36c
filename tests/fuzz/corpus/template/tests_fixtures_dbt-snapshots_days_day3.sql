update lake.customers set name = 'Bob', updated_at = '2024-01-03 09:00' where id = 2;
update lake.customers set tier = 'diamond', updated_at = '2024-01-03 10:00' where id = 1;
insert into lake.customers values (3, 'eu', 'Cy', 'bronze', '2024-01-03 11:00');
