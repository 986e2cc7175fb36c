#!/bin/sh
# make demo: fill the synthetic lake on the embedded PostgreSQL and run the
# example pipeline at the repo root. The server stops again at the end.
set -eu
./sluice embedded start >/dev/null
trap './sluice embedded stop >/dev/null 2>&1 || true' EXIT
./sluice debug >/dev/null          # creates the clinic database on first use
eval "$(./sluice embedded env)"
psql -X -q -v ON_ERROR_STOP=1 -d clinic -f demo/lake.sql
echo "== sluice run: lake -> staging views -> marts =="
./sluice run
echo
echo "== the marts =="
psql -X -d clinic -c 'select trial_name, drug, treatments, responded, stable, progressed from analytics_marts.trial_outcomes order by trial_id limit 5'
