#!/usr/bin/perl
# chainlint.pl: finds the checks of the end-to-end tests (tests/cli/t*.sh, tests/faults/t*.sh)
# whose failure would not fail their test, as git's t/chainlint does for
# its && chains. It parses the shell (quotes, $(...), heredocs, line
# continuations, if/while/for/case, groups and subshells), so that a
# multi-line command is one command. It does not run anything, and it does
# not judge what a check checks, only whether its failure is seen.
#
# The rule. A test function is one whose name is an argument of ok or
# ok_libpq, or, transitively, a function of the same script named as a
# command or argument inside a test function (helpers such as views_see).
# In a test function, every command that is not the last one must stop the
# test when it fails, or have its status looked at:
#
#   check || return 1              (or exit N, or false; "|| return" too)
#   check || { echo why; return 1; }
#   check && next-step             (the chain goes on; its end is chained)
#   check && return 0              (or && { ...; return 1; }: decided here)
#   if check; then ...; fi         (a condition decides, it is not ignored)
#   check; rc=$?                   (the next command reads $?)
#   check || true, check || continue   (ignored, or skipped, on purpose)
#
# The last command of the function is its status and needs none of this,
# but a "check || handler" there must have a handler that fails, not
# "|| echo oops". In an if, case or { } group the same holds, the last
# command of a branch being "last" only when the whole compound is; a
# branch that ends in "return 1" is a failure path, and what comes before
# it only says why. In a loop every command must be chained: a loop's
# status is that of its last iteration. A ( subshell ) that is not last
# must itself be chained: a return inside it only leaves the subshell.
#
# Exempt, because they only set up or show, and their failure shows in the
# check that follows: assignments without a command (x=1; not x=$(cmd),
# whose status is cmd's, unless cmd is date), local, export, unset, shift,
# echo, printf, cat, ":" and true, rm, mkdir, sleep, lib.sh's model and
# conn_keys (they print text), and a function of the script that runs only
# exempt commands.
#
# Usage: chainlint.pl FILE...   prints FILE:LINE: check not chained: TEXT
#                               and exits 1 if it found any
#        chainlint.pl           all of tests/cli/t*.sh and tests/faults/t*.sh, as TAP for prove
use strict;
use warnings;

my %EXEMPT = map { $_ => 1 } qw(echo printf cat : true local export unset shift rm mkdir sleep model conn_keys);
my %EXEMPT_FUNC;	# the script's functions that only run exempt commands
my %TEST_RUNNERS = (ok => 1, ok_libpq => 1);

# ---- lexer --------------------------------------------------------------------
# Tokens: [type, text, line] with type WORD, OP (; & | && || ;; ( )), REDIR
# (the operator; its target is the next WORD) or NL. Heredoc bodies are
# skipped at the newline that ends their command line.

sub lex_error { my ($file, $line, $msg) = @_; die "$file:$line: chainlint cannot parse: $msg\n"; }

sub lex {
	my ($file, $s) = @_;
	my @tok;
	my ($pos, $line, $len) = (0, 1, length $s);
	my @heredocs;

	# scan_* advance $pos past a quoted or nested part, counting lines.
	my ($scan_dq, $scan_paren, $scan_bq, $scan_brace, $scan_dollar);
	my $adv = sub {
		my $c = substr($s, $pos++, 1);
		$line++ if $c eq "\n";
		return $c;
	};
	my $scan_sq = sub {
		my $start = $line;
		$pos++;
		while (1) {
			lex_error($file, $start, "unterminated '") if $pos >= $len;
			last if $adv->() eq "'";
		}
	};
	$scan_dollar = sub {	# at '$'
		my $n = substr($s, $pos + 1, 1);
		if ($n eq '(') { $pos++; $scan_paren->() }
		elsif ($n eq '{') { $pos++; $scan_brace->() }
		else { $pos++ }
	};
	$scan_dq = sub {
		my $start = $line;
		$pos++;
		while (1) {
			lex_error($file, $start, 'unterminated "') if $pos >= $len;
			my $c = substr($s, $pos, 1);
			if ($c eq '\\') { $adv->(); $adv->() }
			elsif ($c eq '"') { $pos++; last }
			elsif ($c eq '$') { $scan_dollar->() }
			elsif ($c eq '`') { $scan_bq->() }
			else { $adv->() }
		}
	};
	$scan_bq = sub {
		my $start = $line;
		$pos++;
		while (1) {
			lex_error($file, $start, 'unterminated `') if $pos >= $len;
			my $c = $adv->();
			if ($c eq '\\') { $adv->() }
			elsif ($c eq '`') { last }
		}
	};
	$scan_brace = sub {	# at '{' of ${
		my $start = $line;
		$pos++;
		while (1) {
			lex_error($file, $start, 'unterminated ${') if $pos >= $len;
			my $c = substr($s, $pos, 1);
			if ($c eq '\\') { $adv->(); $adv->() }
			elsif ($c eq '}') { $pos++; last }
			elsif ($c eq "'") { $scan_sq->() }
			elsif ($c eq '"') { $scan_dq->() }
			elsif ($c eq '$') { $scan_dollar->() }
			else { $adv->() }
		}
	};
	$scan_paren = sub {	# at '(' of $( or $((, to its matching ')'
		my $start = $line;
		my $depth = 0;
		while (1) {
			lex_error($file, $start, 'unterminated $(') if $pos >= $len;
			my $c = substr($s, $pos, 1);
			if ($c eq '\\') { $adv->(); $adv->() }
			elsif ($c eq "'") { $scan_sq->() }
			elsif ($c eq '"') { $scan_dq->() }
			elsif ($c eq '`') { $scan_bq->() }
			elsif ($c eq '$') { $scan_dollar->() }
			elsif ($c eq '(') { $depth++; $pos++ }
			elsif ($c eq ')') { $pos++; last if --$depth == 0 }
			else { $adv->() }
		}
	};
	my $scan_word = sub {
		my $from = $pos;
		while ($pos < $len) {
			my $c = substr($s, $pos, 1);
			last if $c =~ /[ \t\n;&|()<>]/;
			if ($c eq '\\') { $adv->(); $adv->() }
			elsif ($c eq "'") { $scan_sq->() }
			elsif ($c eq '"') { $scan_dq->() }
			elsif ($c eq '`') { $scan_bq->() }
			elsif ($c eq '$') { $scan_dollar->() }
			else { $pos++ }
		}
		return substr($s, $from, $pos - $from);
	};

	while ($pos < $len) {
		my $c = substr($s, $pos, 1);
		if ($c eq ' ' || $c eq "\t") { $pos++; next }
		if ($c eq '\\' && substr($s, $pos + 1, 1) eq "\n") { $pos += 2; $line++; next }
		if ($c eq '#') {
			$pos++ while $pos < $len && substr($s, $pos, 1) ne "\n";
			next;
		}
		if ($c eq "\n") {
			push @tok, ['NL', "\n", $line];
			$adv->();
			for my $h (@heredocs) {
				my ($delim, $strip, $start) = @$h;
				while (1) {
					lex_error($file, $start, "heredoc without its end '$delim'") if $pos >= $len;
					my $eol = index($s, "\n", $pos);
					$eol = $len if $eol < 0;
					my $l = substr($s, $pos, $eol - $pos);
					$pos = $eol + 1;
					$line++;
					$l =~ s/^\t+// if $strip;
					last if $l eq $delim;
				}
			}
			@heredocs = ();
			next;
		}
		my $three = substr($s, $pos, 3);
		my $two = substr($s, $pos, 2);
		if ($two eq '<(' || $two eq '>(') {	# process substitution: a word
			my $l = $line;
			my $from = $pos++;
			$scan_paren->();
			push @tok, ['WORD', substr($s, $from, $pos - $from) . $scan_word->(), $l];
			next;
		}
		if ($three eq '<<-' || $two eq '<<') {
			my $strip = $three eq '<<-';
			$pos += $strip ? 3 : 2;
			my $l = $line;
			$pos++ while substr($s, $pos, 1) =~ /[ \t]/;
			my $w = $scan_word->();
			lex_error($file, $l, 'heredoc without a delimiter') if $w eq '';
			(my $delim = $w) =~ s/['"\\]//g;
			push @heredocs, [$delim, $strip, $l];
			push @tok, ['REDIR', '<<', $l], ['WORD', $w, $l];
			next;
		}
		if ($two =~ /^(?:>>|>&|<&|>\||<>)$/) { push @tok, ['REDIR', $two, $line]; $pos += 2; next }
		if ($c eq '<' || $c eq '>') { push @tok, ['REDIR', $c, $line]; $pos++; next }
		if ($two =~ /^(?:&&|\|\||;;)$/) { push @tok, ['OP', $two, $line]; $pos += 2; next }
		if ($c =~ /[;&|()]/) { push @tok, ['OP', $c, $line]; $pos++; next }
		my $l = $line;
		my $w = $scan_word->();
		# an fd number (2>&1) belongs to the redirection that follows
		next if $w =~ /^\d+$/ && substr($s, $pos, 1) =~ /[<>]/;
		push @tok, ['WORD', $w, $l];
	}
	push @tok, ['NL', "\n", $line];
	return \@tok;
}

# ---- parser -------------------------------------------------------------------
# A list is an array of and-or items {pipes, ops, bg, line}; a pipeline is
# {cmds, bang, line}; a command is {type => simple|if|loop|case|group|
# subshell|func, ...}.

my ($T, $I, $FILE);

sub peek { return $T->[$I] }
sub is_word { my ($t, @w) = @_; return $t && $t->[0] eq 'WORD' && grep { $t->[1] eq $_ } @w }
sub is_op { my ($t, @o) = @_; return $t && $t->[0] eq 'OP' && grep { $t->[1] eq $_ } @o }
sub parse_error { my ($msg) = @_; my $t = peek() || $T->[-1]; die "$FILE:$t->[2]: chainlint cannot parse: $msg\n" }
sub skip_nl { $I++ while $I < @$T && $T->[$I][0] eq 'NL' }
sub expect_word {
	my ($w) = @_;
	is_word(peek(), $w) or parse_error("expected '$w', found '" . (peek() ? peek()->[1] : 'EOF') . "'");
	$I++;
}

# parse_list STOP_WORDS STOP_OPS: and-or lists up to a stop word (in command
# position) or operator, or the end.
sub parse_list {
	my ($stop_w, $stop_o) = @_;
	my @items;
	while (1) {
		skip_nl();
		my $t = peek();
		last if !$t || is_word($t, @$stop_w) || is_op($t, @$stop_o);
		my $item = parse_and_or();
		$t = peek();
		if (is_op($t, ';')) { $I++ }
		elsif (is_op($t, '&')) { $I++; $item->{bg} = 1 }
		push @items, $item;
	}
	return \@items;
}

sub parse_and_or {
	my $line = peek()->[2];
	my @pipes = (parse_pipeline());
	my @ops;
	while (is_op(peek(), '&&', '||')) {
		push @ops, peek()->[1];
		$I++;
		skip_nl();
		push @pipes, parse_pipeline();
	}
	return { pipes => \@pipes, ops => \@ops, line => $line };
}

sub parse_pipeline {
	my $line = peek()->[2];
	my $bang = 0;
	if (is_word(peek(), '!')) { $bang = 1; $I++ }
	my @cmds = (parse_command());
	while (is_op(peek(), '|')) {
		$I++;
		skip_nl();
		push @cmds, parse_command();
	}
	return { cmds => \@cmds, bang => $bang, line => $line };
}

sub parse_redirs {
	while (peek() && peek()->[0] eq 'REDIR') {
		$I++;
		peek() && peek()->[0] eq 'WORD' or parse_error('redirection without a target');
		$I++;
	}
}

sub parse_command {
	my $t = peek() or parse_error('unexpected end');
	my $line = $t->[2];
	my $cmd;
	if (is_word($t, 'if')) {
		$I++;
		my (@conds, @bodies);
		push @conds, parse_list(['then'], []);
		expect_word('then');
		push @bodies, parse_list([qw(elif else fi)], []);
		while (is_word(peek(), 'elif')) {
			$I++;
			push @conds, parse_list(['then'], []);
			expect_word('then');
			push @bodies, parse_list([qw(elif else fi)], []);
		}
		my $else;
		if (is_word(peek(), 'else')) { $I++; $else = parse_list(['fi'], []) }
		expect_word('fi');
		$cmd = { type => 'if', conds => \@conds, bodies => \@bodies, else => $else };
	} elsif (is_word($t, 'while', 'until')) {
		$I++;
		my $cond = parse_list(['do'], []);
		expect_word('do');
		my $body = parse_list(['done'], []);
		expect_word('done');
		$cmd = { type => 'loop', cond => $cond, body => $body };
	} elsif (is_word($t, 'for')) {
		$I++;
		$I++;	# the variable
		if (is_word(peek(), 'in')) {
			$I++;
			$I++ while peek() && peek()->[0] eq 'WORD';
		}
		$I++ if is_op(peek(), ';');
		skip_nl();
		expect_word('do');
		my $body = parse_list(['done'], []);
		expect_word('done');
		$cmd = { type => 'loop', cond => [], body => $body };
	} elsif (is_word($t, 'case')) {
		$I++;
		$I++;	# the subject
		skip_nl();
		expect_word('in');
		my @arms;
		while (1) {
			skip_nl();
			last if is_word(peek(), 'esac');
			$I++ if is_op(peek(), '(');
			while (1) {
				peek() && peek()->[0] eq 'WORD' or parse_error('case pattern expected');
				$I++;
				last unless is_op(peek(), '|');
				$I++;
			}
			is_op(peek(), ')') or parse_error("')' expected after a case pattern");
			$I++;
			push @arms, parse_list(['esac'], [';;']);
			$I++ if is_op(peek(), ';;');
		}
		expect_word('esac');
		$cmd = { type => 'case', arms => \@arms };
	} elsif (is_word($t, '{')) {
		$I++;
		my $body = parse_list(['}'], []);
		expect_word('}');
		$cmd = { type => 'group', body => $body };
	} elsif (is_op($t, '(')) {
		$I++;
		my $body = parse_list([], [')']);
		is_op(peek(), ')') or parse_error("')' expected");
		$I++;
		$cmd = { type => 'subshell', body => $body };
	} elsif ($t->[0] eq 'WORD' && $t->[1] =~ /^[A-Za-z_][A-Za-z0-9_]*$/
		 && is_op($T->[$I + 1], '(') && is_op($T->[$I + 2], ')')) {
		$I += 3;
		skip_nl();
		return { type => 'func', name => $t->[1], body => parse_command(), line => $line };
	} else {
		my @words;
		while (my $w = peek()) {
			if ($w->[0] eq 'WORD') { push @words, $w->[1]; $I++ }
			elsif ($w->[0] eq 'REDIR') { parse_redirs() }
			else { last }
		}
		@words or parse_error("unexpected '$t->[1]'");
		return { type => 'simple', words => \@words, line => $line };
	}
	parse_redirs();
	$cmd->{line} = $line;
	return $cmd;
}

# ---- the rule -----------------------------------------------------------------

my (@SRC, @FOUND);

sub report {
	my ($line, $what) = @_;
	(my $text = $SRC[$line - 1] // '') =~ s/^\s+|\s+$//g;
	push @FOUND, "$FILE:$line: $what: $text";
}

# substituted WORD: the first word of each $(...) and `...` in WORD
# (arithmetic $((...)) is not a command).
sub substituted {
	my ($w) = @_;
	my @c;
	push @c, $1 // $2 while $w =~ /\$\((?!\()\s*([^\s);|&]*)|`\s*([^\s`]*)/g;
	return @c;
}

sub assignment_only {
	my ($c) = @_;
	for (@{$c->{words}}) {
		return 0 unless /^[A-Za-z_][A-Za-z0-9_]*=/;
		# x=$(cmd) has cmd's status; only a time stamp cannot fail
		return 0 if grep { $_ ne 'date' } substituted($_);
	}
	return 1;
}

# cmd_name COMMAND: its first word that is not an assignment (VAR=x cmd).
sub cmd_name {
	my ($c) = @_;
	for (@{$c->{words}}) { return $_ unless /^[A-Za-z_][A-Za-z0-9_]*=/ }
	return '';
}

sub exempt_cmd {
	my ($c) = @_;
	return 0 unless $c->{type} eq 'simple';
	return 1 if assignment_only($c) || $EXEMPT_FUNC{cmd_name($c)};
	# "local x=$(cmd)" is rare here; it hides cmd's status all the same
	return $EXEMPT{cmd_name($c)} && !grep { substituted($_) && /^[A-Za-z_][A-Za-z0-9_]*=/ } @{$c->{words}};
}

sub exempt_pipe { my ($p) = @_; return !$p->{bang} && !grep { !exempt_cmd($_) } @{$p->{cmds}} }

# last_simple PIPELINE: the command that ends it: the last of a group's.
sub last_simple {
	my ($p) = @_;
	return undef if @{$p->{cmds}} != 1 || $p->{bang};
	my $c = $p->{cmds}[0];
	if ($c->{type} eq 'group') {
		my $last = $c->{body}[-1] or return undef;
		return undef if @{$last->{pipes}} != 1;
		return last_simple($last->{pipes}[0]);
	}
	return $c->{type} eq 'simple' ? $c : undef;
}

# leaves PIPELINE: it ends in return, exit, break or continue.
sub leaves {
	my $c = last_simple($_[0]);
	return $c && $c->{words}[0] =~ /^(?:return|exit|break|continue)$/;
}

# stops PIPELINE: after a "||", it fails the test: return or exit with a
# status that is not 0, or false; a bare "|| return" returns the failed
# status, "{ echo why; return; }" echo's 0. break and continue skip a loop
# iteration on purpose; true and ":" ignore a failure, visibly.
sub stops {
	my ($p) = @_;
	my $c = last_simple($p) or return 0;
	my ($w, $arg) = @{$c->{words}};
	return 1 if $w =~ /^(?:false|break|continue)$/;
	return 1 if $w =~ /^(?:true|:)$/ && $c == $p->{cmds}[0];
	return 0 unless $w eq 'return' || $w eq 'exit';
	return defined $arg ? $arg ne '0' : $c == $p->{cmds}[0];
}

# reads_status ITEM: it looks at $? (rc=$?): the command before it is checked.
sub reads_status {
	my ($item) = @_;
	my $c = $item && $item->{pipes}[0]{cmds}[0];
	return $c && $c->{type} eq 'simple' && grep { /\$\?/ } @{$c->{words}};
}

# fails PIPELINE: it is return or exit with a status that is not 0, or false.
sub fails {
	my $c = last_simple($_[0]) or return 0;
	my ($w, $arg) = @{$c->{words}};
	return $w eq 'false' || ($w eq 'return' || $w eq 'exit') && defined $arg && $arg ne '0';
}

# lint_list LIST TAIL [BRANCH]: TAIL when the list's status is its caller's;
# BRANCH for the body of an if, case or group.
sub lint_list {
	my ($list, $tail, $branch) = @_;
	# a branch that ends in "return 1" is a failure path: what comes before
	# only says why ("echo ...; grep -l ...; return 1")
	return if $branch && @$list && @{$list->[-1]{pipes}} == 1 && fails($list->[-1]{pipes}[0]);
	for my $i (0 .. $#$list) {
		lint_and_or($list->[$i], $tail && $i == $#$list || reads_status($list->[$i + 1]));
	}
}

sub lint_and_or {
	my ($item, $tail) = @_;
	my @pipes = @{$item->{pipes}};
	if ($item->{bg}) {	# a background job: nothing waits for its status
		lint_inside($_, 1) for @pipes;
		return;
	}
	if (@pipes == 1) {
		lint_pipe($pipes[0], $tail);
		return;
	}
	my $last = $pipes[-1];
	if ($item->{ops}[-1] eq '||') {
		# what the handler guards is as good as last: its failure is seen
		lint_inside($_, 1) for @pipes[0 .. $#pipes - 1];
		return if stops($last);
		if ($tail) {
			report($item->{line}, 'failure handler does not fail') if exempt_pipe($last);
			return;
		}
		report($item->{line}, 'check not chained');
		return;
	}
	# a && chain: fine last, or ending the function ("check && return 0",
	# "run && { echo 'exited 0'; return 1; }"); otherwise it needs a "||"
	lint_inside($_, 1) for @pipes;
	return if $tail || leaves($last) || !grep { !exempt_pipe($_) } @pipes;
	report($item->{line}, 'check not chained');
}

# lint_pipe PIPELINE TAIL: a pipeline that is an and-or item of its own.
sub lint_pipe {
	my ($p, $tail) = @_;
	if (@{$p->{cmds}} > 1 || $p->{bang}) {
		lint_inside($p, 1);
		report($p->{line}, 'check not chained') unless $tail || exempt_pipe($p);
		return;
	}
	my $c = $p->{cmds}[0];
	if ($c->{type} eq 'simple') {
		report($p->{line}, 'check not chained') unless $tail || exempt_cmd($c) || leaves($p);
		return;
	}
	if ($c->{type} eq 'subshell') {
		lint_list($c->{body}, 1);
		report($p->{line}, 'check not chained')
			unless $tail || !grep { !exempt_pipe($_) } map { @{$_->{pipes}} } @{$c->{body}};
		return;
	}
	lint_compound($c, $tail);
}

# lint_inside PIPELINE TAIL: the compounds of a pipeline whose own status
# is taken care of (guarded by "||", or part of a chain).
sub lint_inside {
	my ($p, $tail) = @_;
	for my $c (@{$p->{cmds}}) {
		if ($c->{type} eq 'subshell') { lint_list($c->{body}, 1) }
		elsif ($c->{type} ne 'simple') { lint_compound($c, $tail) }
	}
}

sub lint_compound {
	my ($c, $tail) = @_;
	if ($c->{type} eq 'if') {
		lint_list($_, 1) for @{$c->{conds}};
		lint_list($_, $tail, 1) for @{$c->{bodies}};
		lint_list($c->{else}, $tail, 1) if $c->{else};
	} elsif ($c->{type} eq 'loop') {
		lint_list($c->{cond}, 1);
		lint_list($c->{body}, 0);
	} elsif ($c->{type} eq 'case') {
		lint_list($_, $tail, 1) for @{$c->{arms}};
	} elsif ($c->{type} eq 'group') {
		lint_list($c->{body}, $tail, 1);
	} elsif ($c->{type} eq 'subshell') {
		lint_list($c->{body}, 1);
	}
	# a nested function definition is linted on its own if it is a test's
}

# ---- which functions are tests ------------------------------------------------

# walk NODE CALLBACK: every command under NODE (lists, pipelines, compounds).
sub walk {
	my ($n, $cb) = @_;
	if (ref $n eq 'ARRAY') { walk($_, $cb) for @$n; return }
	if ($n->{pipes}) { walk($_, $cb) for @{$n->{pipes}}; return }
	if ($n->{cmds}) { walk($_, $cb) for @{$n->{cmds}}; return }
	$cb->($n);
	my $t = $n->{type};
	if ($t eq 'if') { walk($_, $cb) for @{$n->{conds}}, @{$n->{bodies}}, $n->{else} // [] }
	elsif ($t eq 'loop') { walk($n->{cond}, $cb); walk($n->{body}, $cb) }
	elsif ($t eq 'case') { walk($_, $cb) for @{$n->{arms}} }
	elsif ($t eq 'group' || $t eq 'subshell') { walk($n->{body}, $cb) }
	elsif ($t eq 'func') { walk($n->{body}, $cb) }
}

sub lint_file {
	my ($file) = @_;
	open my $fh, '<', $file or die "$file: $!\n";
	my $src = do { local $/; <$fh> };
	close $fh;
	$FILE = $file;
	@SRC = split /\n/, $src, -1;
	$T = lex($file, $src);
	$I = 0;
	my $top = parse_list([], []);
	$I == @$T or parse_error("unexpected '" . peek()->[1] . "'");

	my (%funcs, %tests, @queue);
	walk($top, sub { push @{$funcs{$_[0]{name}}}, $_[0] if $_[0]{type} eq 'func' });
	%EXEMPT_FUNC = ();
	for my $name (keys %funcs) {
		my @defs = @{$funcs{$name}};
		$EXEMPT_FUNC{$name} = 1 unless grep {
			$_->{body}{type} ne 'group' || grep { !exempt_pipe($_) } map { @{$_->{pipes}} } @{$_->{body}{body}}
		} @defs;
	}
	my $calls = sub {	# the script's functions named by a simple command
		my ($c) = @_;
		return () unless $c->{type} eq 'simple';
		return grep { $funcs{$_} } @{$c->{words}};
	};
	walk($top, sub {
		my ($c) = @_;
		push @queue, $calls->($c) if $c->{type} eq 'simple' && $TEST_RUNNERS{$c->{words}[0]};
	});
	while (defined(my $name = shift @queue)) {
		next if $tests{$name}++;
		walk($_->{body}, sub { push @queue, $calls->($_[0]) }) for @{$funcs{$name}};
	}
	for my $name (sort keys %tests) {
		for my $f (@{$funcs{$name}}) {
			my $b = $f->{body};
			if ($b->{type} eq 'group') { lint_list($b->{body}, 1) }
			elsif ($b->{type} eq 'subshell') { lint_list($b->{body}, 1) }
			else { lint_compound($b, 1) }
		}
	}
}

# ---- main -----------------------------------------------------------------------

# found FILE: what lint_file reports on FILE, in line order.
sub found {
	my ($file) = @_;
	@FOUND = ();
	eval { lint_file($file); 1 } or push @FOUND, $@ =~ s/\n$//r;
	return sort { ($a =~ /:(\d+):/)[0] <=> ($b =~ /:(\d+):/)[0] } @FOUND;
}

# self_check FILE: the linter reports the lines of FILE after a "#LINT"
# line, and no other; returns what differs.
sub self_check {
	my ($file) = @_;
	open my $fh, '<', $file or return "$file: $!";
	my (%want, %got, @diff);
	while (<$fh>) { $want{$. + 1} = 1 if /^\s*#LINT$/ }
	close $fh;
	for (found($file)) {
		/^[^:]*:(\d+): / or return "$_";
		$got{$1} = 1;
		push @diff, "reported, not marked: $_" unless $want{$1};
	}
	push @diff, map { "marked, not reported: $file:$_" } grep { !$got{$_} } sort { $a <=> $b } keys %want;
	return @diff;
}

my $bad = 0;
if (@ARGV) {
	for my $file (@ARGV) {
		my @f = found($file);
		print "$_\n" for @f;
		$bad++ if @f;
	}
	exit($bad ? 1 : 0);
}

# prove runs it without arguments: TAP, first on its own cases
(my $dir = $0) =~ s{/?[^/]*$}{};
$dir = '.' if $dir eq '';
my @files = sort(glob("$dir/../cli/t[0-9]*.sh"), glob("$dir/../faults/t[0-9]*.sh"));
@files or die "chainlint: no tests/cli/t*.sh next to $0\n";
print '1..', 1 + @files, "\n";
my $n = 0;
my $tap = sub {
	my ($desc, @diag) = @_;
	$n++;
	print @diag ? 'not ok' : 'ok', " $n - $desc\n";
	# on stderr too, so that prove shows them without -v
	for (@diag) { print "# $_\n"; print STDERR "# $_\n" }
};
$tap->('chainlint reports exactly the marked lines of tests/harness/chainlint-cases.sh',
	self_check("$dir/chainlint-cases.sh"));
for my $file (@files) {
	(my $name = $file) =~ s{^.*/([^/]+/[^/]+)$}{tests/$1};
	$tap->("$name: every check is chained", map { s/^\Q$file\E:/$name:/r } found($file));
}
exit 0;
