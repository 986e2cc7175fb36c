select * from {{ source('emr', 'patients') }}
