#!/usr/bin/perl
# tests/harness/differential.pl: the randomized differential test of
# skipping (docs/testing.md, "The differential test"). Each campaign draws
# a random project: sources, a DAG of tables, views, ephemeral and
# incremental models (some with cutoff: checksum) and a shell model with
# an input file. Each round mutates it at random (source rows, model
# code, whitespace only, vars, the shell model's input), runs sluice on a
# random selection with several threads, and checks three things:
#
#   stale   every selected relation equals its query, rendered here
#           independently of sluice, evaluated now;
#   scratch after a full run, every relation equals what a from-scratch
#           run in a second database builds from the same sources;
#   missed/wasted
#           the models sluice executed are exactly those a small model of
#           the rules in docs/fingerprints.md says are affected;
#   reuse   with --env2 T: after each run, a run of the whole DAG in
#           target T (whose output has reuse_from: [dev]) in the same
#           database, and every relation of T, reused from dev or built,
#           equals its query now, as stale checks dev's
#           (docs/environments.md).
#
# It stops at the first discrepancy and prints how to replay it.
#
# usage: differential.pl --dir D --db DB --db2 DB2 --seed S --rounds N
#        [--env2 T --env2-schema SCHEMA] [--sabotage] [--quiet]
# D/p1 and D/p2 must hold a profiles.yml for DB and DB2 (profile "diff",
# target "dev"); psql reaches both through the PG* environment.
# --sabotage writes a source row behind change detection's back in one
# round: the run must then report a stale table (the test of the test).
use strict;
use warnings;
use Getopt::Long;
use FindBin;
use lib $FindBin::RealBin;
use Seeded;
use JSON::PP;
use Digest::MD5 qw(md5_hex);
use Time::HiRes qw(time);

my ($dir, $db, $db2, $seed, $rounds, $sabotage, $quiet, $env2, $env2_schema) = ('', '', '', 1, 20, 0, 0, '', '');
GetOptions('dir=s' => \$dir, 'db=s' => \$db, 'db2=s' => \$db2, 'seed=i' => \$seed,
	'rounds=i' => \$rounds, 'sabotage' => \$sabotage, 'quiet' => \$quiet, 'env2=s' => \$env2,
	'env2-schema=s' => \$env2_schema)
	or die "usage: $0 --dir D --db DB --db2 DB2 --seed S --rounds N\n";
die "$0: --dir, --db and --db2 are required\n" unless $dir && $db && $db2;
my $sluice = $ENV{SLUICE_BIN} or die "$0: SLUICE_BIN is not set\n";

seed($seed);

my %stat = (rounds => 0, runs => 0, executed => 0, reused => 0, scratch => 0, checks => 0, env2 => 0, env2_reused => 0,
	sluice_s => 0, psql_s => 0);
my @history;	# what happened, for the report of a discrepancy
my $t_start = time;

sub note { push @history, $_[0]; print "# $_[0]\n" unless $quiet; }

sub fail {
	my ($kind, $msg) = @_;
	print STDERR "differential: $kind in round $stat{rounds} (seed $seed): $msg\n";
	print STDERR "replay: make campaign SEED=$seed ROUNDS=$stat{rounds}\n";
	print STDERR "history (last 40):\n";
	print STDERR "  $_\n" for @history[($#history > 39 ? $#history - 39 : 0) .. $#history];
	print STDERR "project: $dir/p1 (kept)\n";
	print "result: $kind\n";
	exit 1;
}

sub slurp { open(my $f, '<', $_[0]) or return undef; local $/; my $s = <$f>; close $f; return $s; }
sub spew { open(my $f, '>', $_[0]) or die "$_[0]: $!\n"; print $f $_[1]; close $f or die "$_[0]: $!\n"; }

# psql(DB, SQL): the rows, one a line, fields separated by '|'.
sub psql {
	my ($d, $sql) = @_;
	my $tmp = "$dir/.sql";
	spew($tmp, $sql);
	my $t0 = time;
	my $out = qx(psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$d" -f "$tmp" 2>&1);
	$stat{psql_s} += time - $t0;
	$stat{psql_n}++;
	fail('error', "psql on $d failed:\n$out\n--- for:\n$sql") if $?;
	return $out;
}

# ---- the project -------------------------------------------------------
#
# Every relation has the columns (k int, v bigint), k unique. Sources:
# raw.s1 (statistics), raw.s2 (trigger) take any write; raw.ev only ever
# grows, so incremental models, which read only what only grows, equal
# their query after every run (an upsert on k keeps no deleted row).

my @sources = (
	{ name => 's1', method => pick('stats', 'trigger'), grows => 0 },
	{ name => 's2', method => 'trigger', grows => 0 },
	{ name => 'ev', method => pick('stats', 'trigger'), grows => 1 },
);
my %src = map { $_->{name} => $_ } @sources;
my $next_k = 1;
my %ver = map { $_->{name} => 0 } @sources;	# bumped on each write
my %vars = (c1 => rnd(5), c2 => rnd(5));

my @nodes;	# in topological order
my %node;

sub add_node { my ($n) = @_; push @nodes, $n; $node{$n->{name}} = $n; }

# The shell model: loads data/shell_in.csv into its relation.
add_node({ name => 'sh', kind => 'shell', parents => [], grows => 0, tags => [pick('a', 'b')] });
my $shell_rows = '';
for (1 .. 3) { $shell_rows .= ($next_k++) . ',' . rnd(50) . "\n"; }

my $nmodels = 5 + rnd(5);
for my $i (1 .. $nmodels) {
	my $kind = pick(qw(table table table view view ephemeral incremental));
	my @cands = ((map { "source:$_->{name}" } @sources), map { $_->{name} } @nodes);
	if ($kind eq 'incremental') {
		@cands = ('source:ev', map { $_->{name} } grep { $_->{grows} } @nodes);
	}
	my @par = (pick(@cands));
	my $shape;
	if (@cands > 1 && chance(35)) {
		my $p2;
		do { $p2 = pick(@cands) } while ($p2 eq $par[0]);
		push @par, $p2;
		$shape = 'join';
	} else {
		$shape = $kind eq 'incremental' ? pick(qw(map map agg count)) : pick(qw(map map filter agg count));
	}
	my $grows = ($shape ne 'filter') ? 1 : 0;
	for my $p (@par) {
		$grows = 0 unless ($p eq 'source:ev' || ($node{$p} && $node{$p}{grows}));
	}
	my $n = {
		name => "m$i", kind => $kind, parents => \@par, shape => $shape, grows => $grows,
		cutoff => ($kind eq 'table' && chance(35)) ? 1 : 0,
		c => rnd(10), cvar => chance(30) ? pick('c1', 'c2') : undef,
		m => 1 + rnd(2), r => rnd(3), pad => 0,
		tags => [pick('a', 'b', 'c')],
	};
	add_node($n);
}

# The test of the test reads raw.s2 in a table, so that a write hidden
# from change detection must leave it stale.
if ($sabotage) {
	add_node({ name => 'sab', kind => 'table', parents => ['source:s2'], shape => 'map', grows => 0,
		cutoff => 0, c => 0, cvar => undef, m => 1, r => 0, pad => 0, tags => ['c'] });
}

sub is_model { return $_[0] !~ /^source:/; }

# children: the reverse edges
my %children;
for my $n (@nodes) { push @{ $children{$_} }, $n->{name} for grep { is_model($_) } @{ $n->{parents} }; }

# The constant a model adds: a literal, or a var.
sub c_tmpl { my ($n) = @_; return $n->{cvar} ? "{{ var('$n->{cvar}') }}" : "$n->{c}"; }
sub c_val { my ($n) = @_; return $n->{cvar} ? $vars{ $n->{cvar} } : $n->{c}; }

# The schema the reference queries read: dev's, or the second environment's.
my $schema_now = 'analytics';

# ref_tmpl: how a model's file names a parent; ref_sql: the same parent for
# the reference query (an ephemeral model inlined, as it is now).
sub ref_tmpl {
	my ($p) = @_;
	return $p =~ /^source:(.*)/ ? "{{ source('raw', '$1') }}" : "{{ ref('$p') }}";
}
sub ref_sql {
	my ($p) = @_;
	return "raw.$1" if $p =~ /^source:(.*)/;
	my $n = $node{$p};
	return "(" . body_sql($n) . ")" if $n->{kind} eq 'ephemeral';
	return "\"$schema_now\".\"$p\"";
}

# The body of a model, with FROM and C filled by the given callbacks.
sub body {
	my ($n, $ref, $c) = @_;
	my ($p1, $p2) = map { $ref->($_) } @{ $n->{parents} };
	my $s = $n->{shape};
	return "select k, (v * $n->{m} + $c)::bigint as v from $p1 as x" if $s eq 'map';
	return "select k, (v + $c)::bigint as v from $p1 as x where v % 3 <> $n->{r}" if $s eq 'filter';
	return "select (k % 3)::int as k, (sum(v) + $c)::bigint as v from $p1 as x group by 1" if $s eq 'agg';
	return "select 0::int as k, (count(*) + $c)::bigint as v from $p1 as x" if $s eq 'count';
	return "select a.k, (a.v + coalesce(b.v, 0) + $c)::bigint as v from $p1 as a left join $p2 as b using (k)";
}
sub body_sql { my ($n) = @_; return body($n, \&ref_sql, c_val($n)); }

sub model_file {
	my ($n) = @_;
	my @cfg = ("materialized='$n->{kind}'");
	push @cfg, "cutoff='checksum'" if $n->{cutoff};
	push @cfg, "unique_key='k'" if $n->{kind} eq 'incremental';
	push @cfg, "tags=['" . join("','", @{ $n->{tags} }) . "']";
	my $sql = "{{ config(" . join(', ', @cfg) . ") }}\n" . body($n, \&ref_tmpl, c_tmpl($n));
	if ($n->{kind} eq 'incremental') {
		$sql .= "\n{% if is_incremental() %}where (k, v) not in (select k, v from {{ this }}){% endif %}";
		# where belongs to the outer query: wrap it
		$sql = "{{ config(" . join(', ', @cfg) . ") }}\nselect * from (" . body($n, \&ref_tmpl, c_tmpl($n)) .
			") as q\n{% if is_incremental() %}where (k, v) not in (select k, v from {{ this }}){% endif %}";
	}
	# whitespace and comments that change no fingerprint
	$sql .= ("\n" . ("  " x $n->{pad}) . "-- pad $n->{pad}") if $n->{pad};
	return "$sql\n";
}

my $shell_script = <<'SH';
# {{ config(inputs=['data/shell_in.csv'], relation=true) }}
set -eu
psql -X -q -v ON_ERROR_STOP=1 -1 \
	-c "create table if not exists $SLUICE_RELATION (k int, v bigint)" \
	-c "truncate $SLUICE_RELATION" \
	-c "\copy $SLUICE_RELATION from 'data/shell_in.csv' with (format csv)"
SH
# shell tags live in its config comment
sub shell_file {
	my $s = $shell_script;
	my $tags = "['" . join("','", @{ $node{sh}{tags} }) . "']";
	$s =~ s/relation=true\)/relation=true, tags=$tags)/;
	return $s;
}

sub write_project {
	my ($p) = @_;
	mkdir "$p/models"; mkdir "$p/data";
	my $yml = "name: diff\nprofile: diff\nvars:\n" . join('', map { "  $_: $vars{$_}\n" } sort keys %vars);
	spew("$p/sluice.yml", $yml);
	my $src = "version: 2\nsources:\n  - name: raw\n    tables:\n";
	$src .= "      - name: $_->{name}\n        change_detection: $_->{method}\n" for @sources;
	spew("$p/models/sources.yml", $src);
	for my $n (@nodes) {
		if ($n->{kind} eq 'shell') {
			spew("$p/models/sh.sh", shell_file());
		} else {
			spew("$p/models/$n->{name}.sql", model_file($n));
		}
	}
	spew("$p/data/shell_in.csv", $shell_rows);
}

# ---- the model of the rules --------------------------------------------
#
# An abstract fingerprint per docs/fingerprints.md: H over what a model's
# result depends on. def: its code, config and vars (an ephemeral parent's
# def is part of its children's code); inputs: the effective fingerprints
# of its parents and the versions of its sources.

my %rec;	# name -> { def, fp, eff } as recorded by the last build
my %outside;	# name -> 1: dropped or written outside sluice since
my %taint;	# incremental name -> 1: holds a row written outside sluice
my %taint2;	# the same in the second environment: copied from one of dev's

sub H { return md5_hex(join("\x00", map { defined $_ ? $_ : '(undef)' } @_)); }

sub own_def {
	my ($n) = @_;
	return H('shell', shell_file(), md5_hex($shell_rows)) if $n->{kind} eq 'shell';
	# the normalised code: what pad changes is not part of it
	my $save = $n->{pad};
	local $n->{pad} = 0;
	return H($n->{kind}, $n->{cutoff}, model_file($n), $n->{cvar} ? "$n->{cvar}=" . c_val($n) : '');
}

sub defx {
	my ($n) = @_;
	return H(own_def($n), map { defx($node{$_}) } grep { is_model($_) && $node{$_}{kind} eq 'ephemeral' } @{ $n->{parents} });
}

# The effective fingerprints nodes show during one run, computed in order.
sub decide {
	my ($selected, $full_refresh) = @_;
	my (%eff, %exec);
	for my $n (@nodes) {
		my $name = $n->{name};
		my $sel = $selected->{$name};
		my $r = $rec{$name};
		my $def = defx($n);
		# a view not selected is read as the warehouse holds it
		my $def_used = ($n->{kind} eq 'view' && !$sel && $r) ? $r->{def} : $def;
		my @in = map {
			/^source:(.*)/ ? "$_=$ver{$1}" : "$_=$eff{$_}"
		} @{ $n->{parents} };
		my $fp = H($def_used, sort @in);
		if ($n->{kind} eq 'ephemeral') {
			$eff{$name} = $fp;
			next;
		}
		if ($n->{kind} eq 'view') {
			$exec{$name} = 1 if $sel && ($full_refresh || !$r || $r->{def} ne $def || $outside{$name});
			$eff{$name} = $fp;
			$rec{$name} = { def => $def, fp => $fp, eff => $fp } if $exec{$name} || ($sel && $r);
			next;
		}
		if (!$sel) {
			$eff{$name} = $r->{eff};
			next;
		}
		if ($full_refresh || !$r || $r->{fp} ne $fp || $outside{$name}) {
			$exec{$name} = 1;
			# an incremental run keeps what was written outside sluice, and
			# what reads it must see that write: a new effective fingerprint
			my $rebuilt = $full_refresh || !$r || $r->{def} ne $def;
			my $kept = $taint{$name} && $outside{$name} && !$rebuilt;
			delete $taint{$name} if $rebuilt;
			# an incremental model built over such a write upstream takes it
			# in, and keeps it when it is gone from there
			$taint{$name} = 1 if $n->{kind} eq 'incremental' &&
				grep { $_ ne $name && $taint{$_} } closure($name, \&up);
			my $eff = $n->{cutoff} ? H('output', content($name)) : $kept ? H('kept', $fp, $stat{rounds}) : $fp;
			$rec{$name} = { def => $def, fp => $fp, eff => $eff };
		}
		$eff{$name} = $rec{$name}{eff};
	}
	delete $outside{$_} for keys %exec;
	return \%exec;
}

sub content {
	my ($name) = @_;
	return psql($db, "select coalesce(string_agg(k || ':' || v, ',' order by k, v), '') from analytics.\"$name\"");
}

# ---- selection -----------------------------------------------------------

sub closure {
	my ($start, $edges) = @_;
	my %seen;
	my @todo = ($start);
	while (@todo) {
		my $x = shift @todo;
		next if $seen{$x}++;
		push @todo, $edges->($x);
	}
	return keys %seen;
}
sub up { return grep { is_model($_) } @{ $node{ $_[0] }{parents} }; }
sub down { return @{ $children{ $_[0] } || [] }; }

# A random selector, and the models it selects.
sub random_selection {
	return ('', { map { $_->{name} => 1 } @nodes }) if chance(35);
	my (@words, %sel);
	for (1 .. (chance(25) ? 2 : 1)) {
		my $m = pick(map { $_->{name} } @nodes);
		my $form = pick(qw(m +m m+ tag));
		if ($form eq 'tag') {
			my $t = pick('a', 'b', 'c');
			push @words, "tag:$t";
			$sel{ $_->{name} } = 1 for grep { grep { $_ eq $t } @{ $_->{tags} } } @nodes;
		} elsif ($form eq '+m') {
			push @words, "+$m";
			$sel{$_} = 1 for closure($m, \&up);
		} elsif ($form eq 'm+') {
			push @words, "$m+";
			$sel{$_} = 1 for closure($m, \&down);
		} else {
			push @words, $m;
			$sel{$m} = 1;
		}
	}
	return (join(' ', @words), \%sel);
}

# ---- mutations -----------------------------------------------------------

# What each source holds, kept here too: writes are chosen to change at
# least one row (a statement that changes nothing need not change a
# version), and the second database gets a copy from it.
my %rows = map { $_->{name} => {} } @sources;

sub write_source {
	my ($s, $how) = @_;
	my $name = $s->{name};
	my $r = $rows{$name};
	my @keys = sort { $a <=> $b } keys %$r;
	$how = 'insert' if $s->{grows} || !@keys;
	my $sql;
	if ($how eq 'insert') {
		my @v = map { [$next_k++, rnd(50)] } 1 .. (1 + rnd(3));
		$r->{ $_->[0] } = $_->[1] for @v;
		$sql = "insert into raw.$name values " . join(', ', map { "($_->[0], $_->[1])" } @v);
	} elsif ($how eq 'update') {
		my $d = 1 + rnd(5);
		$r->{ $keys[0] } += $d;
		$sql = "update raw.$name set v = v + $d where k = $keys[0]";
	} elsif ($how eq 'delete') {
		delete $r->{ $keys[-1] };
		$sql = "delete from raw.$name where k = $keys[-1]";
	} else {
		%$r = ();
		$sql = "truncate raw.$name";
	}
	psql($db, $sql);
	$ver{$name}++;
	note("source $name: $sql");
}

# A relation dropped or written outside sluice; the run after it selects
# everything, since a model below it that is not rebuilt reads it as it
# is (docs/fingerprints.md).
sub tamper {
	my $n = pick(grep { $_->{kind} =~ /^(table|incremental|shell)$/ } @nodes);
	my $name = $n->{name};
	if (chance(50)) {
		psql($db, "drop table analytics.\"$name\" cascade;");
		note("dropped analytics.$name (cascade)");
	} else {
		psql($db, "insert into analytics.\"$name\" values (-1, -1);");
		$outside{$name} = 1;
		$taint{$name} = 1 if $n->{kind} eq 'incremental';
		note("a row written into analytics.$name");
	}
	my %have = map { $_ => 1 } split /\n/, psql($db, "select relname from pg_class c join pg_namespace s " .
		"on s.oid = c.relnamespace where s.nspname = 'analytics';");
	for (grep { $_->{kind} ne 'ephemeral' && !$have{ $_->{name} } } @nodes) {
		$outside{ $_->{name} } = 1;
		delete $taint{ $_->{name} };	# rebuilt from scratch
	}
}

sub mutate {
	my $what = pick(qw(source source source code pad var shell nothing));
	if ($what eq 'source') {
		write_source(pick(@sources), pick(qw(insert insert update delete truncate)));
	} elsif ($what eq 'code' || $what eq 'pad') {
		my $n = pick(grep { $_->{kind} ne 'shell' } @nodes);
		if ($what eq 'code') {
			if ($n->{cvar}) { $n->{cvar} = undef; } else { $n->{c} = ($n->{c} + 1 + rnd(5)) % 17; }
			note("code of $n->{name}: adds " . c_tmpl($n));
		} else {
			$n->{pad}++;
			note("whitespace and a comment in $n->{name}");
		}
		spew("$dir/p1/models/$n->{name}.sql", model_file($n));
	} elsif ($what eq 'var') {
		my $v = pick(sort keys %vars);
		$vars{$v} = ($vars{$v} + 1 + rnd(3)) % 9;
		write_project_yml();
		note("var $v = $vars{$v}");
	} elsif ($what eq 'shell') {
		if (chance(30)) {
			# the same content written again: not a change
			note("shell input rewritten unchanged");
		} else {
			$shell_rows .= ($next_k++) . ',' . rnd(50) . "\n";
			$shell_rows =~ s/^[^\n]*\n// if chance(40);
			note("shell input changed");
		}
		spew("$dir/p1/data/shell_in.csv", $shell_rows);
	} else {
		note("no change");
	}
}

sub write_project_yml {
	my $yml = "name: diff\nprofile: diff\nvars:\n" . join('', map { "  $_: $vars{$_}\n" } sort keys %vars);
	spew("$dir/p1/sluice.yml", $yml);
}

# ---- running and checking -----------------------------------------------

# sluice(P, DB, ARGS...): run in project P; dies on a failure.
sub sluice_run {
	my ($p, $d, @args) = @_;
	my $log = "$dir/last.log";
	my $t0 = time;
	my $pid = fork();
	die "fork: $!\n" unless defined $pid;
	if ($pid == 0) {
		chdir $p or die "$p: $!\n";
		$ENV{PGDATABASE} = $d;	# for the shell model, under ODBC too
		open(STDOUT, '>', $log) or die "$log: $!\n";
		open(STDERR, '>&', \*STDOUT) or die "$log: $!\n";
		exec($sluice, @args) or die "exec $sluice: $!\n";
	}
	waitpid($pid, 0);
	my $rc = $? >> 8;
	$stat{runs}++;
	$stat{sluice_s} += time - $t0;
	fail('failed run', "sluice @args exited $rc:\n" . (slurp($log) // '')) if $rc != 0;
	return slurp($log);
}

sub results {
	my ($p) = @_;
	my $j = decode_json(slurp("$p/target/run_results.json") // fail('error', "no run_results.json"));
	my %st;
	for my $r (@{ $j->{results} }) {
		(my $n = $r->{unique_id}) =~ s/^model\.diff\.//;
		$st{$n} = $r->{status};
	}
	return \%st;
}

# The relations whose content differs from their reference query.
sub check_stale {
	my ($sel, $skip) = @_;
	my @q;
	for my $n (@nodes) {
		next unless $sel->{ $n->{name} };
		next if $n->{kind} eq 'ephemeral' || $n->{kind} eq 'shell' || $skip->{ $n->{name} };
		my $r = "$schema_now.\"$n->{name}\"";
		my $b = body_sql($n);
		push @q, "select '$n->{name}' where exists ((select k, v from $r except all select * from ($b) q)" .
			" union all (select * from ($b) q except all select k, v from $r))";
	}
	if ($sel->{sh}) {
		my $b = "values " . join(', ', map { "($_)" } split /\n/, $shell_rows);
		push @q, "select 'sh' where exists ((select k, v from $schema_now.sh except all $b)" .
			" union all ($b except all select k, v from $schema_now.sh))";
	}
	push @q, "select '-' where false" unless @q;
	my $out = psql($db, join("\nunion all\n", @q) . ";\n");
	$stat{checks}++;
	my @stale = grep { length } split /\n/, $out;
	fail('stale', "relations that differ from their query now: @stale") if @stale && $schema_now eq 'analytics';
	fail('stale reuse', "relations of $schema_now that differ from their query now: @stale") if @stale;
}

sub digest_all {
	my ($d) = @_;
	my @q = map {
		"select '$_->{name}', md5(coalesce(string_agg(k || ':' || v, ',' order by k, v), '')) from analytics.\"$_->{name}\""
	} grep { $_->{kind} ne 'ephemeral' } @nodes;
	my %h = map { split /\|/ } grep { length } split /\n/, psql($d, join("\nunion all\n", @q) . ";\n");
	return \%h;
}

# A from-scratch run in the second database, from a copy of the sources.
sub check_scratch {
	psql($db2, "drop schema if exists raw, analytics, sluice_meta cascade;\n" .
		"create schema raw;\n" . join('', map {
		my $s = $_->{name};
		my $r = $rows{$s};
		"create table raw.$s (k int, v int);\n" . (%$r ? "insert into raw.$s values " .
			join(', ', map { "($_, $r->{$_})" } sort { $a <=> $b } keys %$r) . ";\n" : '');
	} @sources));
	system("rm -rf '$dir/p2/models' '$dir/p2/data' '$dir/p2/target' '$dir/p2/.sluice'") == 0 or die;
	system("cp -r '$dir/p1/models' '$dir/p1/data' '$dir/p1/sluice.yml' '$dir/p2/'") == 0 or die;
	sluice_run("$dir/p2", $db2, 'sources', 'instrument');
	sluice_run("$dir/p2", $db2, 'run', '--threads', '4');
	my ($a, $b) = (digest_all($db), digest_all($db2));
	# what reads an incremental model holding an outside write differs, by design
	my %skip = map { $_ => 1 } map { closure($_, \&down) } keys %taint;
	my @diff = grep { !$skip{$_} && ($a->{$_} // '') ne ($b->{$_} // '') } sort keys %$b;
	$stat{scratch}++;
	fail('stale', "after a full run, relations that differ from a from-scratch run: @diff") if @diff;
}

# The second environment, reusing from dev: after a run of its whole
# DAG, what it holds, reused or built, is its query now. Not what reads
# an incremental model of dev holding an outside write: a copy of it holds
# that write too, by design (docs/fingerprints.md).
sub check_env2 {
	sluice_run("$dir/p1", $db, 'run', '--target', $env2, '--threads', 2 + rnd(3));
	my $j = decode_json(slurp("$dir/p1/target/run_results.json") // fail('error', "no run_results.json"));
	my @reused = map { (my $n = $_->{unique_id}) =~ s/^model\.diff\.//; $n } grep { $_->{reused_from} } @{ $j->{results} };
	note("$env2 reused from dev: @reused");
	$stat{env2}++;
	$stat{env2_reused} += @reused;
	# a copy of an incremental model of dev holding an outside write holds
	# it too, and keeps it through its own incremental runs; a rebuild from
	# scratch (its code changed, or it was missing) lets it go
	for my $r (@{ $j->{results} }) {
		(my $n = $r->{unique_id}) =~ s/^model\.diff\.//;
		my $why = join(' ', @{ $r->{reasons} || [] });
		delete $taint2{$n} if $r->{status} eq 'success' && !$r->{reused_from} &&
			$why =~ /code changed|config changed|never built|is missing/;
		$taint2{$n} = 1 if $r->{reused_from} && grep { $taint{$_} } closure($n, \&up);
	}
	my %skip = map { $_ => 1 } map { closure($_, \&down) } keys %taint, keys %taint2;
	$schema_now = $env2_schema;
	check_stale({ map { $_->{name} => 1 } @nodes }, \%skip);
	$schema_now = 'analytics';
}

sub one_run {
	my ($selector, $sel, $full_refresh) = @_;
	my @args = ('run', '--threads', 2 + rnd(3));
	push @args, '-s', $selector if length $selector;
	push @args, '--full-refresh' if $full_refresh;
	note("sluice @args");
	sluice_run("$dir/p1", $db, @args);
	my $st = results("$dir/p1");
	my $exec = decide($sel, $full_refresh);
	my (@missed, @wasted, @bad);
	for my $n (@nodes) {
		my $name = $n->{name};
		next if $n->{kind} eq 'ephemeral';
		my $s = $st->{$name};
		if ($sel->{$name}) {
			push @bad, "$name=" . ($s // 'absent') unless defined $s && ($s eq 'success' || $s eq 'reused');
		}
		my $ran = defined $s && $s eq 'success';
		push @missed, $name if $exec->{$name} && !$ran;
		push @wasted, $name if !$exec->{$name} && $ran;
		$stat{ $ran ? 'executed' : 'reused' }++ if $sel->{$name};
	}
	fail('failed run', "statuses: @bad") if @bad;
	fail('missed', "should have run but did not: @missed (ran: " .
		join(' ', sort grep { $st->{$_} eq 'success' } keys %$st) . ")") if @missed;
	fail('wasted', "ran but did not need to: @wasted") if @wasted;
	check_stale($sel, \%taint);
	check_scratch() if !length $selector;
	check_env2() if $env2;
}

# ---- the campaign ----------------------------------------------------------

psql($db, "create schema raw;\n" . join('', map { "create table raw.$_->{name} (k int, v int);\n" } @sources));
write_source($_, 'insert') for @sources, @sources;
write_project("$dir/p1");
note("models: " . join(' ', map {
	"$_->{name}=$_->{kind}" . ($_->{cutoff} ? '+cutoff' : '') . '(' . join(',', @{ $_->{parents} }) . ")"
} @nodes));
sluice_run("$dir/p1", $db, 'sources', 'instrument');
one_run('', { map { $_->{name} => 1 } @nodes }, 0);

my $sabotage_round = $sabotage ? 1 + rnd($rounds) : 0;
for my $round (1 .. $rounds) {
	$stat{rounds} = $round;
	note("-- round $round");
	if ($round == $sabotage_round) {
		# a write change detection cannot see: the trigger switched off
		# (raw.s2 always uses the trigger method), after a full run, so
		# that no earlier change of raw.s2 makes sab stale anyway
		one_run('', { map { $_->{name} => 1 } @nodes }, 0);
		psql($db, "alter table raw.s2 disable trigger all; insert into raw.s2 values (" .
			($next_k++) . ", 7); alter table raw.s2 enable trigger all;");
		note("sabotage: a row in raw.s2 that change detection cannot see");
		one_run('', { map { $_->{name} => 1 } @nodes }, 0);
		next;
	}
	if (chance(8)) {
		tamper();
		one_run('', { map { $_->{name} => 1 } @nodes }, 0);
		next;
	}
	mutate() for 1 .. (1 + rnd(2));
	my ($selector, $sel) = random_selection();
	one_run($selector, $sel, chance(5) ? 1 : 0);
}

printf "result: ok: %d rounds, %d runs, %d models executed, %d reused, %d from-scratch comparisons, " .
	"%d second-environment runs (%d relations reused from dev), " .
	"0 stale, 0 missed, 0 wasted, 0 failed, %.0f s (%.0f s in sluice, %.0f s in psql)\n",
	$stat{rounds}, $stat{runs}, $stat{executed}, $stat{reused}, $stat{scratch}, $stat{env2}, $stat{env2_reused},
	time - $t_start,
	$stat{sluice_s}, $stat{psql_s}; print "psql calls: $stat{psql_n}\n";
exit 0;
