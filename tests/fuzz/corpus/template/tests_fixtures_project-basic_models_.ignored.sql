select 'dot files are skipped'
