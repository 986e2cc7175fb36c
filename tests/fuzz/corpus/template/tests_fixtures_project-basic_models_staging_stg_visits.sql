select * from {{ source('emr', 'visits') }}
