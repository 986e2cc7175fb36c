select 'dot directories are skipped'
