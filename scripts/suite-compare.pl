#!/usr/bin/perl

# Compares two passes of nginx-tests, file by file, as saved by
# scripts/nginx-suite.sh: DIR/<file>.tap (TAP), .err (stderr), .rc (exit
# status), .leftover (processes it left running), and DIR/retry<N>/ for
# files run again alone.
#
#   suite-compare.pl [--allow FILE=ATTRIBUTE]... BASE OTHER
#       prints each pass's counts and every file whose result differs
#       (pass/fail, which subtests failed, skips and their reasons, exit
#       status, plan); exits 1 when a file differs and is not allowed.
#       --allow FILE=ATTR: FILE may differ, but only by assertions that
#       now fail because a Set-Cookie value they compare gained ATTR (e.g.
#       HttpOnly, SameSite=Lax) and nothing else; once per attribute.
#   suite-compare.pl --differing BASE OTHER
#       prints the names of the files whose first results differ (what the
#       runner retries), nothing else.
#
# With retries, a file counts as different only when its results in BASE's
# configuration are all the same and none of them equals a result it gave in
# OTHER's; otherwise it is reported as flaky (timing, not the module).

use warnings;
use strict;

use File::Basename qw/basename/;
use Getopt::Long qw/GetOptions/;

my (%allow, $differing);
GetOptions(
	'allow=s' => sub {
		my ($file, $attr) = $_[1] =~ /^([^=]+)=(.+)$/
			or die "--allow FILE=ATTRIBUTE, not '$_[1]'\n";
		push @{$allow{$file}}, $attr;
	},
	'differing' => \$differing,
) and @ARGV == 2 or die "usage: $0 [--differing] [--allow F=A]... BASE OTHER\n";

my ($base, $other) = @ARGV;

# One file's result: a list of lines, each a fact a test run can change.
sub result {
	my ($dir, $name) = @_;

	my $rc = read_text("$dir/$name.rc");
	return undef unless defined $rc;
	chomp $rc;

	my $tap = read_text("$dir/$name.tap") // '';
	my ($planned, $skip_all, $bail, $ran, @lines) = (undef, undef, undef, 0);
	my (@failed, @skipped, @todo_passed);

	for (split /\n/, $tap) {
		next if /^\s/;	# subtests: their summary line counts
		if (/^1\.\.(\d+)\s*(?:#\s*skip\S*\s*(.*))?$/i) {
			$planned = $1;
			$skip_all = $2 // '' if $1 == 0;
		} elsif (/^Bail out!\s*(.*)/) {
			$bail = $1;
		} elsif (/^(not )?ok\b\s*(\d*)\s*(.*)$/) {
			my ($not, $num, $rest) = ($1, $2 || $ran + 1, $3);
			$ran++;
			my ($desc, $dir, $why) = ($rest, '', '');
			if ($rest =~ /^(.*?)\s*(?<!\\)#\s*(skip|todo)\S*\s*(.*)$/i) {
				($desc, $dir, $why) = ($1, lc $2, $3);
			}
			$desc =~ s/^-\s*//;
			if ($dir eq 'skip') {
				push @skipped, "skipped: $num $why";
			} elsif ($dir eq 'todo') {
				push @todo_passed, "todo passed: $num $desc ($why)"
					unless $not;
			} elsif ($not) {
				push @failed, "failed: $num $desc";
			}
		}
	}

	my $status = 'pass';
	if (defined $skip_all) {
		$status = 'skip';
	} elsif ($rc != 0 || @failed || defined $bail || !defined $planned
		|| $planned != $ran)
	{
		$status = 'fail';
	}

	push @lines, "status: $status";
	push @lines, "skip all: $skip_all" if defined $skip_all;
	push @lines, "exit status: $rc" if $rc != 0;
	push @lines, "bail out: $bail" if defined $bail;
	push @lines, 'plan: ' . ($planned // 'none') . ", ran $ran"
		if !defined $planned || $planned != $ran;
	push @lines, @failed, @skipped, @todo_passed;
	push @lines, 'left processes running after it ended'
		if -e "$dir/$name.leftover";

	return { status => $status, lines => \@lines,
		key => join("\n", @lines), dir => $dir, name => $name,
		failed => scalar @failed };
}

sub read_text {
	my ($path) = @_;
	open my $fh, '<', $path or return undef;
	local $/;
	return scalar <$fh>;
}

sub names {
	my ($dir) = @_;
	return map { basename($_, '.rc') } glob("$dir/*.t.rc");
}

# Every result a file gave in a pass: the full run first, then retries.
sub results {
	my ($dir, $name) = @_;
	return grep { defined } result($dir, $name),
		map { result($_, $name) } sort glob("$dir/retry*");
}

my %names = map { $_ => 1 } names($base), names($other);
my @names = sort keys %names;

if ($differing) {
	for my $name (@names) {
		my ($a, $b) = (result($base, $name), result($other, $name));
		print "$name\n" if !$a || !$b || $a->{key} ne $b->{key};
	}
	exit 0;
}

# The lines of a failed run's stderr that describe failed assertions.
sub diagnostics {
	my ($r) = @_;
	my $err = read_text("$r->{dir}/$r->{name}.err") // '';
	my @diag = grep { /^#/ && !/^# Looks like/ } split /\n/, $err;
	return @diag;
}

sub counts {
	my ($dir) = @_;
	my %n = (pass => 0, fail => 0, skip => 0);
	my @failed;
	for my $r (grep { defined } map { result($dir, $_) } @names) {
		$n{$r->{status}}++;
		push @failed, $r->{name} if $r->{status} eq 'fail';
	}
	return sprintf "%d files: %d passed, %d failed%s, %d skipped",
		$n{pass} + $n{fail} + $n{skip}, $n{pass}, $n{fail},
		(@failed ? " (@failed)" : ''), $n{skip};
}

print basename($base), ": ", counts($base), "\n";
print basename($other), ": ", counts($other), "\n";

my ($same, @unexpected, @allowed, @flaky) = (0);

for my $name (@names) {
	my @a = results($base, $name);
	my @b = results($other, $name);

	unless (@a && @b) {
		push @unexpected, $name;
		print "\nDIFFERS $name: no result in ",
			(@a ? basename($other) : basename($base)), "\n";
		next;
	}

	my %ka = map { $_->{key} => 1 } @a;
	my %kb = map { $_->{key} => 1 } @b;
	my $varies = keys(%kb) > 1;

	if ($a[0]{key} eq $b[0]{key}) {
		$same++;
		next;
	}

	if (grep { $ka{$_} } keys %kb) {
		# Some run under each configuration agreed: timing, not the module.
		push @flaky, $name;
		print "\nFLAKY $name: differed in the full runs, then gave the ",
			"same result under both configurations (", runs(\@a, \@b),
			")\n";
		print_diff($a[0], $b[0]);
		next;
	}

	if (keys(%ka) > 1) {
		# Unstable without the module: no difference can be pinned on it.
		push @flaky, $name;
		print "\nFLAKY $name: results vary from run to run in ",
			basename($base), " itself (", runs(\@a, \@b), ")\n";
		print_diff($a[0], $b[0]);
		next;
	}

	my $allowed = $allow{$name};
	my ($verdict, $why, @added) = ('DIFFERS', '');
	if ($allowed) {
		($why, @added) = explain($a[0], $b[0], $allowed);
		$verdict = 'ALLOWED' unless $why;
	}

	print "\n$verdict $name",
		($varies ? ' (results also vary from run to run in '
			. basename($other) . ')' : ''),
		($allowed ? ": may gain Set-Cookie attributes "
			. join(', ', @$allowed) . (@added ? "; gained "
			. join(', ', @added) : '') . ($why ? "; but $why" : '') : ''),
		"\n";
	print_diff($a[0], $b[0]);
	print_diagnostics($_) for $a[0], $b[0];

	if ($verdict eq 'ALLOWED') {
		push @allowed, $name;
	} else {
		push @unexpected, $name;
	}
}

for my $name (sort keys %allow) {
	next if grep { $_ eq $name } @allowed, @unexpected;
	print "\nNOTE $name is allowed to differ (", join(', ', @{$allow{$name}}),
		") but gave the same result\n";
}

# What a failed run printed about its failed assertions, at most 40 lines.
sub print_diagnostics {
	my ($r) = @_;
	my @diag = diagnostics($r) or return;
	print "  diagnostics in ", basename($r->{dir}), ":\n";
	print map { "    $_\n" } @diag[0 .. ($#diag > 39 ? 39 : $#diag)];
	print "    ... (", @diag - 40, " more lines)\n" if @diag > 40;
}

# Whether OTHER's result differs from BASE's only by failed assertions of
# the form got 'X; ATTR...' where 'X' was expected, each ATTR allowed.
# Returns '' and the attributes gained, or why not.
sub explain {
	my ($x, $y, $allowed) = @_;
	my %in_x = map { $_ => 1 } @{$x->{lines}};
	my %in_y = map { $_ => 1 } @{$y->{lines}};
	my @gone = grep { !$in_y{$_} && !/^(status|exit status):/ }
		@{$x->{lines}};
	return "it lost: @gone" if @gone;
	my @new = grep { !$in_x{$_} } @{$y->{lines}};
	my @other = grep { !/^(status|failed|exit status):/ } @new;
	return "it also changed: @other" if @other;

	# got/expected of each failed assertion, by test name.
	my (%pairs, $test, $got);
	for (diagnostics($y)) {
		if (/^#\s+Failed test '(.*)'/) {
			$test = $1;
		} elsif (/^#\s+got: '(.*)'$/) {
			$got = $1;
		} elsif (/^#\s+expected: '(.*)'$/ && defined $test && defined $got) {
			push @{$pairs{$test}}, [$got, $1];
			undef $got;
		}
	}

	my %ok = map { lc($_) => 1 } @$allowed;
	my %gained;
	for my $line (grep { /^failed:/ } @new) {
		my ($desc) = $line =~ /^failed: \d+ (.*)$/;
		my $pairs = $pairs{$desc // ''}
			or return "no got/expected for '$line'";
		for (@$pairs) {
			my ($g, $e) = @$_;
			return "'$g' is not '$e' plus attributes"
				unless substr($g, 0, length $e) eq $e;
			for my $attr (grep { length } map { s/^\s+|\s+$//gr }
				split /;/, substr($g, length $e))
			{
				return "'$g' gained $attr" unless $ok{lc $attr};
				$gained{$attr} = 1;
			}
		}
	}
	return ('', sort keys %gained);
}

sub runs {
	my ($a, $b) = @_;
	return sprintf "%d runs in %s, %d in %s", scalar @$a, basename($base),
		scalar @$b, basename($other);
}

sub print_diff {
	my ($x, $y) = @_;
	my %in_x = map { $_ => 1 } @{$x->{lines}};
	my %in_y = map { $_ => 1 } @{$y->{lines}};
	print map { "  - $_\n" } grep { !$in_y{$_} } @{$x->{lines}};
	print map { "  + $_\n" } grep { !$in_x{$_} } @{$y->{lines}};
}

printf "\n%s vs %s: %d identical, %d allowed differences%s, %d flaky%s, "
	. "%d unexpected differences%s\n",
	basename($other), basename($base), $same,
	scalar @allowed, (@allowed ? " (@allowed)" : ''),
	scalar @flaky, (@flaky ? " (@flaky)" : ''),
	scalar @unexpected, (@unexpected ? " (@unexpected)" : '');

exit(@unexpected ? 1 : 0);
