#!/usr/bin/perl
# tests/harness/faults.pl: the fault campaign (docs/testing.md, "Fault
# campaign"). Each trial builds a project of about 50 nodes (tables and
# views in layers, an incremental model, an unload/load pair with a
# watermark, a shell model, data tests), changes known models and
# sources, runs `sluice build` with 4 threads and injects ONE fault at a
# random point of its progress (after K node lines, or while a chosen
# statement runs). Then it checks what docs/state.md, docs/stages.md and
# docs/materializations.md promise:
#
#   side      no relation is half-built, no __sluice_ side relation is left;
#   content   every table equals its old or its new content (the trial
#             computes both from the sources), every view its old or new
#             definition;
#   state     the state parses (`sluice plan`), a node it calls up to date
#             holds its new content, a node reported finished is recorded,
#             and nothing that was up to date before has to run again;
#   recovery  the next run exits 0 (so the lock was released or taken
#             over), runs exactly what the plan said had not finished,
#             and leaves every relation new; the delta load holds each
#             source row once;
#   message   a run that failed by itself says ERROR and names what, and
#             no password or secret key appears in output or artifacts.
#
# It prints one line per trial and a summary; the exit code is 1 when a
# trial found a violation (the line says which, the trial dir is kept).
#
# usage: faults.pl --dir D --seed S --trials N [--kinds k1,k2] [--sabotage]
# --sabotage damages the warehouse behind sluice's back after each fault
# (a side table left, a table's rows changed): every trial must then
# report violations (the test of the test).
# SLUICE_TEST_CONNECTOR=odbc: the profile goes through psqlODBC.
# D must be a fresh directory under /tmp (its PostgreSQL's socket path is
# short); the campaign starts its own PostgreSQL (tests/harness/pg.sh,
# restarted and stopped by faults) and its own s3rver (tests/harness/s3.sh).
use strict;
use warnings;
use Getopt::Long;
use FindBin;
use lib $FindBin::RealBin;
use Seeded;
use JSON::PP;
use POSIX qw(:sys_wait_h);
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use Cwd qw(abs_path);
use File::Basename qw(dirname);

my ($dir, $seed, $trials, $kinds, $sabotage) = ('', 1, 8, '', 0);
GetOptions('dir=s' => \$dir, 'seed=i' => \$seed, 'trials=i' => \$trials, 'kinds=s' => \$kinds,
	'sabotage' => \$sabotage)
	or die "usage: $0 --dir D --seed S --trials N [--kinds k1,k2]\n";
die "$0: --dir is required\n" unless $dir;
my $sluice = $ENV{SLUICE_BIN} or die "$0: SLUICE_BIN is not set\n";
my $harness = dirname(abs_path($0));
mkdir $dir;
$dir = abs_path($dir);
chmod 0755, $dir;	# the server runs as an unprivileged user, who must reach it

my @all_kinds = qw(kill9 sigterm terminate pg_restart pg_stop s3_kill enospc state_lock state_s3_500);
my @kinds = $kinds ? split(/,/, $kinds) : @all_kinds;
for my $k (@kinds) { die "$0: unknown fault kind $k (@all_kinds)\n" unless grep { $_ eq $k } @all_kinds; }

seed($seed);
$| = 1;	# one line per trial as it ends, also into a file

sub slurp { open(my $f, '<', $_[0]) or return undef; local $/; my $s = <$f>; close $f; return $s; }
sub spew { open(my $f, '>', $_[0]) or die "$_[0]: $!\n"; print $f $_[1]; close $f or die "$_[0]: $!\n"; }
sub sh { my $rc = system(@_); return $rc == 0; }

# ---- the servers -----------------------------------------------------------

my $pgdir = "$dir/pg";
my %pg;
{
	my $out = qx(sh '$harness/pg.sh' start '$pgdir' 2>'$dir/pg-start.log');
	die "faults: cannot start PostgreSQL:\n" . (slurp("$dir/pg-start.log") // '') if $?;
	%pg = map { /^SLUICE_TEST_(\w+)=(.*)$/ ? ($1 => $2) : () } split /\n/, $out;
}
$ENV{PGHOST} = $pg{PGHOST};
$ENV{PGPORT} = $pg{PGPORT};
$ENV{PGUSER} = $pg{PGUSER};
$ENV{PGPASSWORD} = $pg{PGPASSWORD};
# the password only reaches sluice through env_var(): it must never show
$ENV{FAULTS_PG_PASSWORD} = $pg{PGPASSWORD};
my $secret = $pg{PGPASSWORD};
my $s3_secret = "faults-s3-secret-$$";
$ENV{FAULTS_S3_SECRET} = $s3_secret;

my $s3dir = "$dir/s3";
my ($s3_port, $s3_ok) = (0, 0);
sub s3_start {
	my $out = qx(SLUICE_S3_PORT=$s3_port sh '$harness/s3.sh' start '$s3dir' 2>>'$dir/s3-start.log');
	return 0 if $?;
	($s3_port) = $out =~ m{SLUICE_TEST_S3_ENDPOINT=http://127\.0\.0\.1:(\d+)};
	return 1;
}
$s3_ok = s3_start() if grep { /^(s3_kill|state_s3_500)$/ } @kinds;
if (!$s3_ok && grep { /^(s3_kill|state_s3_500)$/ } @kinds) {
	print "# s3rver is not available: the S3 faults are left out\n";
	@kinds = grep { !/^(s3_kill|state_s3_500)$/ } @kinds;
}

# A proxy in front of s3rver that answers 500 to every PUT while
# $dir/proxy.fail exists: the S3 state backend failing to write.
my ($proxy_pid, $proxy_port) = (0, 0);
sub proxy_start {
	my $ls = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 16, ReuseAddr => 1)
		or die "proxy: $!\n";
	$proxy_port = $ls->sockport;
	$proxy_pid = fork();
	die "fork: $!\n" unless defined $proxy_pid;
	return if $proxy_pid;
	$SIG{CHLD} = 'IGNORE';
	while (my $c = $ls->accept) {
		if (fork() == 0) { proxy_serve($c); exit 0; }
		close $c;
	}
	exit 0;
}
sub proxy_serve {
	my ($c) = @_;
	while (1) {
		my $head = '';
		while ($head !~ /\r\n\r\n/) {
			my $n = sysread($c, my $b, 65536);
			return unless $n;
			$head .= $b;
		}
		my ($h, $body) = split /\r\n\r\n/, $head, 2;
		my ($len) = $h =~ /^content-length:\s*(\d+)/mi;
		$len //= 0;
		while (length($body) < $len) {
			my $n = sysread($c, my $b, 65536);
			return unless $n;
			$body .= $b;
		}
		if ($h =~ /^PUT /  && -e "$dir/proxy.fail") {
			my $x = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>' .
				'<Message>injected by the fault campaign</Message></Error>';
			print $c "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\n" .
				"Content-Length: " . length($x) . "\r\nConnection: close\r\n\r\n$x";
			return;
		}
		$h =~ s/^connection:[^\r\n]*\r\n//mig;
		my $u = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $s3_port) or return;
		print $u "$h\r\nConnection: close\r\n\r\n$body";
		while (sysread($u, my $b, 65536)) { print $c $b; }
		close $u;
		return;
	}
}
proxy_start() if grep { $_ eq 'state_s3_500' } @kinds;

sub stop_servers {
	kill("TERM", $proxy_pid) if $proxy_pid;
	system("sh '$harness/s3.sh' stop '$s3dir' >/dev/null 2>&1") if $s3_ok;
	system("sh '$harness/pg.sh' stop '$pgdir' >/dev/null 2>&1");
}

# psql(DB, SQL): rows, one a line, fields separated by '|'; undef on failure.
sub psql {
	my ($db, $sql) = @_;
	spew("$dir/.sql", $sql);
	my $out = qx(psql -X -q -A -t -v ON_ERROR_STOP=1 -d '$db' -f '$dir/.sql' 2>&1);
	return $? ? undef : $out;
}
sub psql_ok {
	my ($db, $sql) = @_;
	my $out = psql($db, $sql);
	die "faults: psql on $db failed for:\n$sql\n" unless defined $out;
	return $out;
}

# ---- the project -------------------------------------------------------------
#
# Every relation of the layers has (id, v, d): v = a * raw.base.v + b,
# d names the model and its constant, so the trial knows each one's
# content before and after its change, and which definition a view has.

my %fault_count;
my %violation_count;
my $n_violations = 0;

sub model_sql {
	my ($m) = @_;
	my $sleep = $m->{sleep} ? "\nwhere (select count(*) from pg_sleep($m->{sleep})) = 1" : '';
	my $d = "'$m->{name}:$m->{c}'";
	my $cfg = "{{ config(materialized='$m->{kind}') }}\n";
	if (@{ $m->{parents} } == 1) {
		my $p = $m->{parents}[0];
		my $from = $p eq 'base' ? "{{ source('raw', 'base') }}" : "{{ ref('$p') }}";
		return "${cfg}select id, v + $m->{c} as v, $d as d from $from$sleep\n";
	}
	my ($p1, $p2) = @{ $m->{parents} };
	return "${cfg}select a.id, a.v + b.v + $m->{c} as v, $d as d\n" .
		"from {{ ref('$p1') }} a join {{ ref('$p2') }} b using (id)$sleep\n";
}

# (a, b) of v = a * base.v + b, from the constants given.
sub linear {
	my ($models, $name, $cs) = @_;
	my $m = $models->{$name};
	return (1, 0) if $name eq 'base';
	my ($a, $b) = (0, $cs->{$name});
	for my $p (@{ $m->{parents} }) {
		my ($pa, $pb) = linear($models, $p, $cs);
		$a += $pa;
		$b += $pb;
	}
	return ($a, $b);
}

sub new_trial {
	my ($t, $kind) = @_;
	my $T = { n => $t, kind => $kind, dir => "$dir/t$t", db => "faults_t$t" };
	system("rm -rf '$T->{dir}'");
	mkdir $T->{dir}; mkdir "$T->{dir}/models"; mkdir "$T->{dir}/data";
	psql_ok('postgres', "drop database if exists $T->{db} with (force); create database $T->{db};");
	my $big = $kind eq 's3_kill' || $kind eq 'enospc';
	psql_ok($T->{db}, "create schema raw;
create table raw.base (id int primary key, v bigint);
insert into raw.base select g, (g * 7919) % 1000 from generate_series(1, 200) g;
create table raw.events (id int primary key, v bigint);
insert into raw.events select g, g % 13 from generate_series(1, 100) g;
create table raw.bulk (id int primary key, v bigint, pad text);
insert into raw.bulk select g, g, repeat(md5(g::text), 2) from generate_series(1, " . ($big ? 90000 : 10) . ") g;");

	# the layers: 40 models, tables and views, one or two parents
	my (%models, @order);
	my @prev = ('base');
	my @all;
	for my $l (0 .. 4) {
		my @layer;
		for my $i (0 .. 7) {
			my $name = sprintf("m%d_%d", $l, $i);
			my @par = $l == 0 ? ('base') : (pick(@all));
			if ($l > 0 && chance(40)) {
				my $p2 = pick(@all);
				push @par, $p2 if $p2 ne $par[0];
			}
			my $kind_m = chance(65) ? 'table' : 'view';
			my $m = { name => $name, kind => $kind_m, parents => \@par, c => rnd(50),
				sleep => $kind_m eq 'table' ? (1 + rnd(4)) / 10 : 0 };
			$models{$name} = $m;
			push @order, $name;
			push @layer, $name;
		}
		push @all, @layer;
	}
	$T->{models} = \%models;
	$T->{order} = \@order;
	spew("$T->{dir}/models/$_.sql", model_sql($models{$_})) for @order;

	# the incremental model, the unload/load pair (a delta by watermark),
	# the big unload/load pair (a replace), the shell model, the tests
	spew("$T->{dir}/models/inc.sql", "{{ config(materialized='incremental', unique_key='id') }}\n" .
		"select id, v from {{ source('raw', 'events') }}\n" .
		"{% if is_incremental() %}where id > (select coalesce(max(id), 0) from {{ this }}){% endif %}\n");
	spew("$T->{dir}/models/unl.sql", "{{ config(materialized='unload') }}\n" .
		"select id, v from {{ source('raw', 'events') }}\n" .
		"{% if is_incremental() %}where id > {{ watermark }}{% endif %}\n");
	spew("$T->{dir}/models/ld.sql", "{{ config(materialized='load', watermark='id') }}\n{{ ref('unl') }}\n");
	spew("$T->{dir}/models/bulk_unl.sql", "{{ config(materialized='unload', stage_retention=1) }}\n" .
		"select id, v, pad from {{ source('raw', 'bulk') }}\n");
	spew("$T->{dir}/models/bulk_ld.sql", "{{ config(materialized='load') }}\n{{ ref('bulk_unl') }}\n");
	spew("$T->{dir}/models/sh.sh", "# {{ config(inputs=['data/sh.csv'], relation=true) }}\nset -eu\n" .
		"psql -X -q -v ON_ERROR_STOP=1 -1 -c \"create table if not exists {{ this }} (id int, v bigint)\" " .
		"-c \"truncate {{ this }}\" -c \"\\copy {{ this }} from 'data/sh.csv' with (format csv)\"\n");
	spew("$T->{dir}/data/sh.csv", join('', map { "$_," . rnd(100) . "\n" } 1 .. 20));
	my @tested = grep { $models{$_}{kind} eq 'table' } @order;
	my $yml = "version: 2\nsources:\n  - name: raw\n    tables:\n      - name: base\n      - name: events\n" .
		"      - name: bulk\nmodels:\n";
	$yml .= "  - name: $_\n    columns:\n      - name: id\n        tests: [not_null, unique]\n"
		for (@tested[0 .. 3], 'inc', 'ld');
	spew("$T->{dir}/models/schema.yml", $yml);

	# where the state and the stage are
	# (the faults of the run itself meet each backend: a lock released by
	# the kernel, by the server, or taken over from a dead process)
	my $state = 'local';
	$state = pick('local', 'warehouse', $s3_ok ? 's3' : 'local') if $kind !~ /^(state_|s3_kill|enospc)/;
	$state = 'warehouse' if $kind eq 'state_lock';
	$state = 's3' if $kind eq 'state_s3_500';
	$T->{state} = $state;
	my $state_url = $state eq 's3' ? "s3://sluice-test/faults-$$-t$t/" : $state;
	spew("$T->{dir}/sluice.yml", "name: faults\nprofile: faults\nstate: $state_url\n");
	my $s3 = '';
	my $stage = 'file://.sluice/stage';
	if ($kind eq 's3_kill' || $state eq 's3') {
		my $port = $kind eq 'state_s3_500' ? $proxy_port : $s3_port;
		$s3 = "      s3:\n        endpoint: http://127.0.0.1:$port\n        region: us-east-1\n" .
			"        access_key_id: S3RVER\n        secret_access_key: \"{{ env_var('FAULTS_S3_SECRET') }}\"\n" .
			"        part_size: 5242880\n        max_attempts: 2\n";
		$stage = "s3://sluice-test/faults-$$-t$t-stage" if $kind eq 's3_kill';
	}
	if ($kind eq 'enospc') {
		$T->{mnt} = "$T->{dir}/stage";
		mkdir $T->{mnt};
		sh("mount -t tmpfs -o size=64m tmpfs '$T->{mnt}'") or return undef;
		$stage = "file://$T->{mnt}";
	}
	my $type = "      type: postgres\n      host: \"$pg{PGHOST}\"\n";
	if (($ENV{SLUICE_TEST_CONNECTOR} // '') eq 'odbc') {
		my $drv = $ENV{SLUICE_TEST_ODBC_DRIVER} // '/usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so';
		$type = "      type: odbc\n      dialect: postgres\n      connection_string: \"Driver=$drv;Server=$pg{PGHOST}\"\n";
	}
	spew("$T->{dir}/profiles.yml", "faults:\n  target: dev\n  outputs:\n    dev:\n" .
		"$type      port: $pg{PGPORT}\n      user: \"$pg{PGUSER}\"\n" .
		"      password: \"{{ env_var('FAULTS_PG_PASSWORD') }}\"\n      dbname: \"$T->{db}\"\n" .
		"      schema: analytics\n      threads: 4\n      stage: $stage\n$s3");
	return $T;
}

# The relations the checks look at: name => [kind, old, new] where old and
# new are content digests (tables) or definition tags (views).
sub digest_sql {
	my ($rel) = @_;
	return "select md5(coalesce(string_agg(id || ':' || v, ',' order by id, v), '')) from analytics.\"$rel\"";
}

sub expected {
	my ($T, $cs) = @_;
	my %e;
	my @q;
	for my $name (@{ $T->{order} }) {
		my $m = $T->{models}{$name};
		if ($m->{kind} eq 'view') {
			$e{$name} = "$name:$cs->{$name}";
			next;
		}
		my ($a, $b) = linear($T->{models}, $name, $cs);
		push @q, "select '$name', md5(coalesce(string_agg(id || ':' || (v * $a + $b) || ':$name:$cs->{$name}', ',' " .
			"order by id), '')) from raw.base";
	}
	for (split /\n/, psql_ok($T->{db}, join("\nunion all\n", @q) . ";\n")) {
		my ($n, $h) = split /\|/;
		$e{$n} = $h;
	}
	my $ev = "select md5(coalesce(string_agg(id || ':' || v, ',' order by id, v), '')) from raw.events";
	chomp($e{inc} = psql_ok($T->{db}, "$ev;"));
	$e{ld} = $e{inc};
	chomp($e{bulk_ld} = psql_ok($T->{db}, "select md5(coalesce(string_agg(id || ':' || v || ':' || pad, ',' " .
		"order by id), '')) from raw.bulk;"));
	my $sh = '';
	$sh .= "$_\n" for map { join(':', split /,/) } grep { length } split /\n/, slurp("$T->{dir}/data/sh.csv");
	chomp($e{sh} = psql_ok($T->{db}, "select md5(coalesce(string_agg(x, ',' order by split_part(x, ':', 1)::int), '')) " .
		"from regexp_split_to_table(trim(trailing e'\\n' from '$sh'), e'\\n') x;"));
	return \%e;
}

# What the warehouse holds now, in the same terms; undef for a relation
# that is missing or cannot be read.
sub actual {
	my ($T) = @_;
	my %a;
	my @q;
	for my $name (@{ $T->{order} }) {
		my $m = $T->{models}{$name};
		if ($m->{kind} eq 'view') {
			push @q, "select '$name', (select d from analytics.\"$name\" limit 1)";
		} else {
			push @q, "select '$name', md5(coalesce(string_agg(id || ':' || v || ':' || d, ',' order by id), '')) " .
				"from analytics.\"$name\"";
		}
	}
	push @q, "select 'inc', (" . digest_sql('inc') . ")";
	push @q, "select 'ld', (" . digest_sql('ld') . ")";
	push @q, "select 'sh', (" . digest_sql('sh') . ")";
	push @q, "select 'bulk_ld', (select md5(coalesce(string_agg(id || ':' || v || ':' || pad, ',' order by id), '')) " .
		"from analytics.bulk_ld)";
	# one query per relation, so that one missing relation hides no other
	for my $q (@q) {
		my $out = psql($T->{db}, "$q;");
		next unless defined $out;
		chomp $out;
		my ($n, $h) = split /\|/, $out, 2;
		$a{$n} = $h;
	}
	return \%a;
}

# run(T, ARGS...): sluice in the trial's project, in the background; the pid.
sub run_bg {
	my ($T, $log, @args) = @_;
	my $pid = fork();
	die "fork: $!\n" unless defined $pid;
	if ($pid == 0) {
		chdir $T->{dir} or die;
		$ENV{PGDATABASE} = $T->{db};
		open(STDOUT, '>', $log) or die;
		open(STDERR, '>&', \*STDOUT) or die;
		exec($sluice, @args) or exit 127;
	}
	return $pid;
}
sub run_fg {
	my ($T, $log, @args) = @_;
	my $pid = run_bg($T, $log, @args);
	waitpid($pid, 0);
	return $? & 127 ? "signal " . ($? & 127) : $? >> 8;
}

# plan(T): { name => build|reuse } for the models, or undef when plan fails.
sub plan {
	my ($T) = @_;
	my $log = "$T->{dir}/plan.json";
	return undef if run_fg($T, $log, 'plan', '--format', 'json') ne '0';
	my $j = eval { decode_json(slurp($log)) } or return undef;
	my %p;
	for (@$j) {
		(my $n = $_->{unique_id}) =~ s/^model\.faults\.// or next;
		$p{$n} = $_->{action};
	}
	return \%p;
}

sub finished_lines {
	my ($log) = @_;
	my $s = slurp($log) // '';
	return scalar(() = $s =~ /^\[\d+\/\d+\] /mg);
}

# The names the faulted run reported finished: "[i/n] OK kind schema.name".
sub reported_ok {
	my ($log) = @_;
	my %ok;
	for (split /\n/, slurp($log) // '') {
		$ok{$1} = 1 if /^\[\d+\/\d+\] OK \S+ (?:analytics\.|models\/)(\w+)/;
	}
	return \%ok;
}

# ---- the faults -------------------------------------------------------------

sub pg_ctl { my ($what) = @_; return sh("sh '$harness/pg.sh' $what '$pgdir' >>'$dir/pg-ctl.log' 2>&1"); }

sub sluice_sessions {
	my ($T) = @_;
	return grep { length } split /\n/, psql('postgres', "select pid from pg_stat_activity where datname = '$T->{db}' " .
		"and application_name like 'sluice/%' order by state = 'active' desc, pid;") // '';
}

my $lock_pid = 0;

# alive(PID): whether the run still runs; once it ended, $exit{PID} says how.
my %exit;
sub alive {
	my ($pid) = @_;
	return 0 if exists $exit{$pid};
	return 1 if waitpid($pid, WNOHANG) == 0;
	$exit{$pid} = $? & 127 ? "signal " . ($? & 127) : $? >> 8;
	return 0;
}

# side_relations(T): the __sluice_ side relations in T's database, space-separated.
sub side_relations {
	my ($T) = @_;
	my $side = psql_ok($T->{db}, "select string_agg(n.nspname || '.' || c.relname, ' ') from pg_class c " .
		"join pg_namespace n on n.oid = c.relnamespace where c.relname like '%\\_\\_sluice\\_%' " .
		"and n.nspname not like 'pg\\_%';") // '';
	chomp $side;
	return $side;
}

# holds_sigterm(PID): whether the process is sluice and blocks SIGTERM (its
# main does from its start). Not before the exec: perl's forked child blocks
# every signal for a moment too, then unblocks them.
sub holds_sigterm {
	my ($pid) = @_;
	my $exe = readlink("/proc/$pid/exe") // '';
	return 0 unless $exe eq (Cwd::abs_path($sluice) // $sluice);
	open(my $f, '<', "/proc/$pid/status") or return 0;
	while (<$f>) {
		return (hex(substr($1, -8)) >> 14) & 1 if /^SigBlk:\s*([0-9a-f]+)/i;
	}
	return 0;
}

# inject(T, PID): wait for the fault's moment, inject it; what happened.
sub inject {
	my ($T, $pid, $log) = @_;
	my $kind = $T->{kind};
	my $k = $T->{moment};
	my $alive = sub { return alive($pid) };
	if ($kind eq 's3_kill' || $kind eq 'enospc') {
		# the moment: a random delay after the big unload started
		while ($alive->() && (slurp($log) // '') !~ /^\[\d+\/\d+\] START unload analytics\.bulk_unl/m) {
			sleep 0.02;
		}
		return ('late', 0) unless $alive->();
		sleep($k / 1000);
		if ($kind eq 's3_kill') {
			chomp(my $spid = slurp("$s3dir/s3rver.pid") // '');
			kill 'KILL', $spid if $spid;
			# a killed child of init may stay a zombie for a moment, which
			# kill -0 (s3.sh's "already runs") cannot tell from a live one
			unlink "$s3dir/s3rver.pid";
			return ('s3rver killed', 1);
		}
		return ('during the unload', 1);
	}
	while ($alive->() && finished_lines($log) < $k) { sleep 0.02; }
	# a signal can be handled only once sluice's main holds it: before
	# that (the forked driver, the dynamic loader) any program dies by it
	while ($kind eq 'sigterm' && $alive->() && !holds_sigterm($pid)) { sleep 0.002; }
	return ('late', 0) unless $alive->();
	if ($kind eq 'kill9') { kill 'KILL', $pid; }
	elsif ($kind eq 'sigterm') { kill 'TERM', $pid; }
	elsif ($kind eq 'terminate') {
		my @s = sluice_sessions($T);
		return ('no session', 0) unless @s;
		psql('postgres', "select pg_terminate_backend($s[rnd(scalar @s)]);");
	} elsif ($kind eq 'pg_restart') {
		pg_ctl('restart');
	} elsif ($kind eq 'pg_stop') {
		pg_ctl('stop');
		sleep(1 + rnd(4));
		pg_ctl('resume');
	} elsif ($kind eq 'state_lock') {
		$lock_pid = fork();
		if ($lock_pid == 0) {
			open(STDOUT, '>', '/dev/null');
			exec('psql', '-X', '-q', '-d', $T->{db}, '-c', 'begin; lock table sluice_meta.node_state in ' .
				'access exclusive mode; select pg_sleep(' . (2 + rnd(4)) . '); commit;');
			exit 127;
		}
	} elsif ($kind eq 'state_s3_500') {
		spew("$dir/proxy.fail", '');
	}
	return ("after $k lines", 1);
}

sub after_fault {
	my ($T) = @_;
	if ($T->{kind} eq 's3_kill' && !-e "$s3dir/s3rver.pid") {
		# again on its port, once the killed one has let go of it
		my $tries = 0;
		until (s3_start()) {
			die "faults: s3rver does not start again (see $dir/s3-start.log)\n" if ++$tries > 50;
			sleep 0.2;
		}
	} elsif ($T->{kind} eq 'state_s3_500') {
		unlink "$dir/proxy.fail";
	} elsif ($T->{kind} eq 'state_lock' && $lock_pid) {
		waitpid($lock_pid, 0);
		$lock_pid = 0;
	} elsif ($T->{kind} eq 'enospc') {
		sh("mount -o remount,size=256m '$T->{mnt}'");
	}
}

# What a failed run's output must say after each fault, somewhere.
my %cause = (
	terminate => qr/terminat|server closed|connection/i,
	pg_restart => qr/terminat|shut ?down|server closed|connection/i,
	pg_stop => qr/terminat|shut ?down|server closed|connection/i,
	s3_kill => qr/s3:\/\/|connect/i,
	enospc => qr/no space left/i,
	state_s3_500 => qr/state\b.*(500|InternalError)/,   # "state (s3): record ..." or "state: taking the lock: s3 PUT ..."
	sigterm => qr/interrupt|cancel|SIGTERM/i,
);

# ---- one trial ------------------------------------------------------------------

sub trial {
	my ($t, $kind) = @_;
	my $T = new_trial($t, $kind);
	return ('skipped', 'cannot mount a tmpfs') unless $T;
	my @v;	# violations
	my $rc = run_fg($T, "$T->{dir}/first.log", 'build');
	return ('error', "the first run exited $rc: " . (slurp("$T->{dir}/first.log") // '')) if $rc ne '0';

	# the change: constants of some models, new events, the shell's input
	my %old_c = map { $_ => $T->{models}{$_}{c} } @{ $T->{order} };
	my $old = expected($T, \%old_c);
	my %new_c = %old_c;
	for my $name (@{ $T->{order} }) {
		next unless chance(25);
		$new_c{$name} = $old_c{$name} + 1 + rnd(9);
		$T->{models}{$name}{c} = $new_c{$name};
		spew("$T->{dir}/models/$name.sql", model_sql($T->{models}{$name}));
	}
	psql_ok($T->{db}, "insert into raw.events select g, g % 11 from generate_series(101, " . (101 + rnd(50)) . ") g;
update raw.bulk set v = v + 1 where id = 1;");
	spew("$T->{dir}/data/sh.csv", join('', map { "$_," . rnd(100) . "\n" } 1 .. 20)) if chance(50);
	my $new = expected($T, \%new_c);
	my $before = plan($T) or return ('error', 'plan before the faulted run failed');
	my @stale = sort grep { $before->{$_} eq 'build' } keys %$before;

	if ($kind eq 'enospc') {
		# room for a part of the big unload's generation, not for all of it
		my ($used) = (qx(df -k --output=used '$T->{mnt}') =~ /(\d+)\s*$/);
		my $room = 1024 + rnd(4096);
		sh("mount -o remount,size=" . ($used + $room) . "k '$T->{mnt}'") or return ('error', 'remount');
		$T->{moment} = $room;
	} elsif ($kind eq 's3_kill') {
		$T->{moment} = rnd(400);
	} else {
		$T->{moment} = rnd(scalar(@stale) + 2);
	}

	my $log = "$T->{dir}/faulted.log";
	my $pid = run_bg($T, $log, 'build');
	my ($moment, $hit) = inject($T, $pid, $log);
	$moment = "$T->{moment} KiB free" if $kind eq 'enospc';
	$moment = "$T->{moment} ms into the unload" if $kind eq 's3_kill' && $hit;
	my $waited = time;
	while (alive($pid)) {
		if (time - $waited > 300) {
			push @v, 'hang: the faulted run did not end within 300 s';
			kill 'KILL', $pid;
		}
		sleep 0.05;
	}
	my $frc = $exit{$pid};
	after_fault($T);
	my $out = slurp($log) // '';
	if ($sabotage) {
		my ($t1) = grep { $T->{models}{$_}{kind} eq 'table' } @{ $T->{order} };
		psql_ok($T->{db}, "create table analytics.${t1}__sluice_new (id int);
update analytics.$t1 set v = v + 1000 where id = 1;");
	}

	# SIGTERM is handled: statements cancelled, artifacts written, 143
	push @v, "sigterm: the run ended by the signal itself, not with 143" if $kind eq 'sigterm' && $frc eq 'signal 15';

	# message: a run that ended by itself with a failure says what failed,
	# in the words of what failed
	my $why = '';
	if ($frc ne '0' && $frc !~ /^signal/) {
		($why) = $out =~ /^\[[-\d]+\/\d+\] ERROR [^\n]*\n\s+([^\n]+)/m;
		($why) = $out =~ /^(?:sluice: )?(?:error|ERROR)[: ]+([^\n]+)/m unless $why;
		# a signal between two statements cancels nothing: the skipped nodes say it
		($why) = $out =~ /^([^\n]*(?:interrupted|run cancelled)[^\n]*)/mi unless $why;
		if (!$why) {
			push @v, "message: exit $frc without an ERROR line";
		} elsif ($hit && $cause{$kind} && $out !~ $cause{$kind}) {
			push @v, "message: no line names the fault ($cause{$kind})";
		}
		$why = " ($why)";
		$why = substr($why, 0, 120) . '...)' if length $why > 120;
	}

	# side: no side relation, everything readable. A load's streams table
	# is committed (its streams write on connections of their own): one
	# whose sluice or server was killed cannot drop it, so it may be left
	# after such a fault, and the next run must drop it (below).
	my $side = side_relations($T);
	my $may_leave = $kind =~ /^(kill9|terminate|pg_restart|pg_stop)$/;
	$side = join(' ', grep { !($may_leave && /__sluice_streams$/) } split / /, $side);
	push @v, "side: left behind: $side" if length $side;

	# content: old or new
	my $now = actual($T);
	my @names = (@{ $T->{order} }, qw(inc ld sh bulk_ld));
	for my $n (@names) {
		my $a = $now->{$n};
		if (!defined $a) { push @v, "content: $n cannot be read"; next; }
		push @v, "content: $n is neither old nor new" if $a ne $old->{$n} && $a ne $new->{$n};
	}
	my $dups = psql_ok($T->{db}, "select count(*) - count(distinct id) from analytics.ld;");
	chomp $dups;
	push @v, "load: $dups rows of analytics.ld loaded twice" if $dups;

	# state: parses; up to date means new; reported finished means recorded
	my $after = plan($T);
	if (!$after) {
		push @v, 'state: sluice plan fails after the fault: ' . (slurp("$T->{dir}/plan.json") // '');
	} else {
		my $ok = reported_ok($log);
		for my $n (@names) {
			my $act = $after->{$n} // 'absent';
			push @v, "state: $n is recorded up to date but is not new"
				if $act eq 'reuse' && ($now->{$n} // '') ne $new->{$n};
			push @v, "state: $n was reported OK but must run again" if $ok->{$n} && $act ne 'reuse';
			push @v, "state: $n was up to date before and must run now" if $act eq 'build' && $before->{$n} eq 'reuse';
		}
	}

	# recovery: the next run exits 0, runs exactly what had not finished
	my $rrc = run_fg($T, "$T->{dir}/next.log", 'build');
	my $next = slurp("$T->{dir}/next.log") // '';
	if ($rrc ne '0') {
		push @v, "recovery: the next run exited $rrc: " . join(' | ', grep { /ERROR|FAIL|lock/ } split /\n/, $next);
	}
	my $side_next = side_relations($T);
	push @v, "side: left behind after the next run: $side_next" if length $side_next;
	my $twice = psql_ok($T->{db}, "select count(*) - count(distinct id) from analytics.ld;");
	chomp $twice;
	push @v, "load: after the next run, $twice rows of analytics.ld are loaded twice" if $twice;
	if ($rrc eq '0' && $after) {
		my $j = eval { decode_json(slurp("$T->{dir}/target/run_results.json")) };
		my %ran;
		for (@{ $j->{results} // [] }) {
			(my $n = $_->{unique_id}) =~ s/^model\.faults\.// or next;
			$ran{$n} = 1 if $_->{status} eq 'success';
		}
		my @missed = grep { ($after->{$_} // '') eq 'build' && !$ran{$_} } sort keys %$after;
		my @extra = grep { ($after->{$_} // '') ne 'build' } sort keys %ran;
		push @v, "recovery: did not run @missed" if @missed;
		push @v, "recovery: ran @extra, which had finished" if @extra;
		my $final = actual($T);
		my @notnew = grep { ($final->{$_} // '') ne $new->{$_} } @names;
		push @v, "recovery: not new after it: @notnew" if @notnew;
		my $n_ld = psql_ok($T->{db}, "select (select count(*) from analytics.ld) = (select count(*) from raw.events);");
		push @v, "load: analytics.ld does not hold raw.events once" unless $n_ld =~ /^t/;
	}

	# no secret anywhere
	my $leak = qx(grep -rlF -e '$secret' -e '$s3_secret' '$log' '$T->{dir}/next.log' '$T->{dir}/target' '$T->{dir}/.sluice' 2>/dev/null);
	push @v, "secret: in $leak" if length $leak;

	my $result = @v ? 'VIOLATION' : 'ok';
	$T->{violations} = \@v;
	return ($result, "$moment, exit $frc$why, " . scalar(@stale) . " to build, " .
		(@v ? join('; ', @v) : 'all checks hold'), $hit, $T);
}

# ---- the campaign -------------------------------------------------------------------

my %hit;
my @failed;
my $t_start = time;
for my $t (1 .. $trials) {
	my $kind = $kinds[($t - 1 + rnd(scalar @kinds)) % @kinds];
	$kind = $kinds[($t - 1) % @kinds] if $t <= @kinds;	# each kind once first
	my ($result, $what, $hit, $T) = eval { trial($t, $kind) };
	($result, $what) = ('error', $@) unless defined $result;
	chomp $what;
	$fault_count{$kind}++;
	$hit{$kind}++ if $hit;
	printf "trial %d seed %d: %-24s %s: %s\n", $t, $seed, $kind . ($T ? " ($T->{state})" : ''), $result, $what;
	if ($result eq 'VIOLATION' || $result eq 'error') {
		$n_violations += $result eq 'VIOLATION' ? scalar @{ $T->{violations} } : 1;
		$violation_count{$kind}++;
		push @failed, "t$t";
	}
	sh("umount '$T->{mnt}'") if $T && $T->{mnt};
	if ($T && $result ne 'VIOLATION' && $result ne 'error') {
		psql('postgres', "drop database if exists $T->{db} with (force);");
		system("rm -rf '$T->{dir}'");
	}
}
stop_servers();
printf "summary: seed %d, %d trials in %.0f s; faults by kind: %s; violations: %d%s\n",
	$seed, $trials, time - $t_start,
	join(', ', map { "$_ $fault_count{$_}" . ($hit{$_} && $hit{$_} != $fault_count{$_} ? " ($hit{$_} mid-run)" : '') }
		grep { $fault_count{$_} } @all_kinds),
	$n_violations, @failed ? " (kept: " . join(' ', map { "$dir/$_" } @failed) . ")" : '';
exit(@failed ? 1 : 0);
