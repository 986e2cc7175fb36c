# The trial dashboards read a CSV file, not the warehouse: export the mart.
# sluice runs this after trial_outcomes is built, and again only when that
# table or this script changes. psql finds the database through the PG*
# variables sluice sets.
# {{ config(outputs=['target/files/trial_outcomes.csv'], timeout='5m') }}
set -eu
mkdir -p target/files
psql -X -q -v ON_ERROR_STOP=1 \
	-c "copy (select * from {{ ref('trial_outcomes') }} order by trial_id) to stdout with (format csv, header)" \
	>target/files/trial_outcomes.csv.tmp
mv target/files/trial_outcomes.csv.tmp target/files/trial_outcomes.csv
echo "exported $(($(wc -l <target/files/trial_outcomes.csv) - 1)) trials"
