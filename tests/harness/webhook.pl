#!/usr/bin/perl
# webhook.pl: a webhook receiver for the tests, on loopback only.
#
#   perl tests/harness/webhook.pl PORTFILE BODIES [STATUS]
#
# Listens on 127.0.0.1 on a free port, writes the port to PORTFILE, and
# appends each request's body to BODIES as one line (with the request
# line in front: "POST /path <body>"), answering STATUS (default 200).
# Runs until killed. Core Perl only.
use strict;
use warnings;
use IO::Socket::INET;

my ($portfile, $bodies, $status) = @ARGV;
die "usage: webhook.pl PORTFILE BODIES [STATUS]\n" unless $bodies;
$status ||= 200;
my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 8, ReuseAddr => 1)
	or die "webhook.pl: listen: $!\n";
open my $pf, '>', "$portfile.tmp" or die "webhook.pl: $portfile: $!\n";
print $pf $srv->sockport, "\n";
close $pf;
rename "$portfile.tmp", $portfile or die "webhook.pl: rename: $!\n";

while (my $c = $srv->accept) {
	my ($line, $len) = ('', 0);
	$line = <$c> // next;
	$line =~ s/\r?\n$//;
	while (my $h = <$c>) {
		last if $h =~ /^\r?\n$/;
		$len = $1 if $h =~ /^Content-Length:\s*(\d+)/i;
	}
	my $body = '';
	read($c, $body, $len) if $len;
	my ($method, $path) = split / /, $line;
	open my $out, '>>', $bodies or die "webhook.pl: $bodies: $!\n";
	print $out "$method $path $body\n";
	close $out;
	print $c "HTTP/1.1 $status X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
	close $c;
}
