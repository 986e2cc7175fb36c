update lake.customers set tier = 'platinum', updated_at = '2024-01-02 08:00' where id = 1;
delete from lake.customers where id = 3;
insert into lake.customers values (4, 'eu', 'Di', 'gold', '2024-01-02 12:00');
