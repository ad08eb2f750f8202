package Test::Paranoid;

# Helpers shared by the paranoid_session tests: memcached started on a free
# port and inspected through its text protocol, and session cookies.

use warnings;
use strict;

use Exporter qw/ import /;
use IO::Socket::IP;
use IO::Socket::UNIX;

use Test::Nginx;

our @EXPORT = qw/ memcached_start memcached_pid memcached_stats memcached_cmd
	session_cookie cookie_header get_with /;

# Starts memcached on port($port) of $host (127.0.0.1 unless given), or on a
# unix socket path, through the test object, so it stops with the test.
sub memcached_start {
	my ($t, $where, $host) = @_;
	$host //= '127.0.0.1';
	my @user = $> == 0 ? ('-u', 'root') : ();
	my @listen = $where =~ m!^/! ? ('-s', $where)
		: ('-l', $host, '-p', port($where));
	$t->run_daemon('memcached', @listen, '-U', '0', @user);
	if ($where =~ m!^/!) {
		for (1 .. 50) {
			last if -S $where;
			select undef, undef, undef, 0.1;
		}
	} elsif ($host eq '127.0.0.1') {
		$t->waitforsocket('127.0.0.1:' . port($where));
	} else {
		for (1 .. 50) {
			last if _connect($where, $host);
			select undef, undef, undef, 0.1;
		}
	}
}

# The pid of the memcached serving port($port), from /proc.
sub memcached_pid {
	my ($where) = @_;
	my $needle = $where =~ m!^/! ? $where : port($where);
	for my $dir (glob '/proc/[0-9]*') {
		open my $fh, '<', "$dir/cmdline" or next;
		my $cmd = join ' ', split /\0/, (<$fh> // '');
		close $fh;
		next unless $cmd =~ /^\S*memcached /;
		return ($dir =~ m!(\d+)$!)[0] if $cmd =~ /(-p|-s) \Q$needle\E\b/;
	}
	return undef;
}

sub _connect {
	my ($where, $host) = @_;
	return IO::Socket::UNIX->new(Peer => $where) if $where =~ m!^/!;
	return IO::Socket::IP->new(PeerHost => $host // '127.0.0.1',
		PeerPort => port($where));
}

# Sends one text protocol command; returns the reply up to its terminator.
sub memcached_cmd {
	my ($where, $cmd, $end, $host) = @_;
	$end //= qr/\r\n\z/;
	my $s = _connect($where, $host) or return undef;
	$s->autoflush(1);
	print $s $cmd;
	my $reply = '';
	local $SIG{ALRM} = sub { die "timeout\n" };
	alarm 5;
	eval {
		while ($reply !~ $end) {
			my $n = sysread($s, $reply, 65536, length $reply);
			last unless $n;
		}
	};
	alarm 0;
	close $s;
	return $reply;
}

# memcached's general statistics as a hash.
sub memcached_stats {
	my ($where, $host) = @_;
	my $reply = memcached_cmd($where, "stats\r\n", qr/END\r\n\z/, $host) // '';
	return { $reply =~ /^STAT (\S+) (\S+)\r$/mg };
}

# The value of the Set-Cookie header for cookie $name in a response.
sub session_cookie {
	my ($r, $name) = @_;
	$name //= 'sessionid';
	return ($r =~ /^Set-Cookie: \Q$name\E=([^;\r]*)/mi)[0];
}

sub cookie_header {
	my (%cookies) = @_;
	return 'Cookie: ' . join('; ', map { "$_=$cookies{$_}" } sort keys %cookies);
}

# GET $uri with extra header lines.
sub get_with {
	my ($uri, @headers) = @_;
	my $extra = join '', map { "$_\r\n" } @headers;
	return http("GET $uri HTTP/1.0\r\nHost: localhost\r\n$extra\r\n");
}

1;
