# tests/harness/Seeded.pm: the random numbers of the randomized campaigns
# (differential.pl, faults.pl). A generator of our own (xorshift32), so a
# seed replays the same campaign whatever perl's own rand does.
package Seeded;
use strict;
use warnings;
use Exporter qw(import);
our @EXPORT = qw(seed rnd pick chance);

my $rng = 1;

# seed(S): start the sequence of seed S.
sub seed { $rng = (($_[0] % 4294967291) * 2654435761 + 12345) % 4294967296 || 1; }

# rnd(N): a whole number in [0, N).
sub rnd {
	my ($n) = @_;
	$rng ^= ($rng << 13) & 0xffffffff;
	$rng ^= $rng >> 17;
	$rng ^= ($rng << 5) & 0xffffffff;
	return $rng % $n;
}
sub pick { return $_[rnd(scalar @_)]; }
sub chance { return rnd(100) < $_[0]; }

1;
