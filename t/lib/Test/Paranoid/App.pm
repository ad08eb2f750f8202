package Test::Paranoid::App;

# A stand-in application for the paranoid_session tests of the control
# header (X-Paranoid-Session): a small HTTP/1 server, run by the test with
# $t->run_daemon(\&app_daemon, port(8081), $t->testdir()), that decides
# per path which command its response carries and echoes what it was sent.
#
#   /login[?user=ID]        X-Paranoid-Session: login [user=ID]
#   /logout                 X-Paranoid-Session: logout
#   /everywhere[?user=ID]   X-Paranoid-Session: logout-everywhere [user=ID]
#   /raw?v=VALUE[&v=...]    one header line per v, VALUE sent as it is
#   anything else           no command
#
# On every path (query arguments are %XX-decoded):
#
#   hdr=NAME    the command goes in header NAME instead
#   code=NNN    the response status (default 200)
#   size=N      the body is app_body(N) instead of the echo below
#   wait=TAG    writes DIR/TAG.arrived once the request is read, then waits
#               (at most 10 s) for DIR/TAG.go before answering
#
# Every response echoes the request: headers X-Seen-User: [value of the
# X-Session-User request header] and X-Seen-Control: [values of the
# X-Paranoid-Session request headers joined with "|", or "none" when there
# was none], and, without size=, the body "user=[...] control=[...]\n".
# A HEAD request gets the same headers and no body.

use warnings;
use strict;

use Exporter qw/ import /;
use IO::Socket::INET;

use Test::Paranoid qw/ session_vars /;

our @EXPORT = qw/ app_daemon app_body app_vars /;

# A body of $size bytes that shows where it was cut or garbled: numbered
# 64-byte lines.
sub app_body {
	my ($size) = @_;
	my $body = '';
	my $n = 0;
	while (length $body < $size) {
		$body .= sprintf "%08d %054s\n", $n, 'paranoid' x 7;
		$n++;
	}
	return substr($body, 0, $size);
}

# session_vars() of a response, plus {user} (X-User), {seen_user} and
# {seen_control} (the application's X-Seen-User and X-Seen-Control), each
# without its brackets, undef when absent.
sub app_vars {
	my ($r) = @_;
	my $v = session_vars($r);
	my $head = defined $r ? (($r =~ /^(.*?)\r?\n\r?\n/s)[0] // $r) : '';
	for ([ user => 'X-User' ], [ seen_user => 'X-Seen-User' ],
		[ seen_control => 'X-Seen-Control' ])
	{
		my ($key, $name) = @$_;
		$v->{$key} = ($head =~ /^\Q$name\E: \[([^\]\r\n]*)\]\r?$/mi)[0];
	}
	return $v;
}

sub _decode {
	my ($s) = @_;
	$s =~ tr/+/ /;
	$s =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
	return $s;
}

sub app_daemon {
	my ($port, $dir) = @_;
	my $server = IO::Socket::INET->new(
		Proto => 'tcp',
		LocalAddr => "127.0.0.1:$port",
		Listen => 64,
		ReuseAddr => 1,
	) or die "Can't create listening socket: $!\n";

	local $SIG{PIPE} = 'IGNORE';
	local $SIG{CHLD} = 'IGNORE';

	while (1) {
		my $client = $server->accept() or next;
		my $pid = fork();
		if (!defined $pid || $pid) {
			close $client;
			next;
		}
		close $server;
		_serve($client, $dir);
		exit 0;
	}
}

sub _serve {
	my ($client, $dir) = @_;
	$client->autoflush(1);

	my $line = <$client> // return;
	my ($method, $uri) = $line =~ m!^(\S+) (\S+) HTTP/!
		or return;
	my %in;
	while (my $h = <$client>) {
		last if $h =~ /^\r?\n\z/;
		my ($name, $value) = $h =~ /^([^:]+):[ \t]*(.*?)[ \t]*\r?\n\z/
			or next;
		push @{$in{lc $name}}, $value;
	}

	my ($path, $query) = $uri =~ /^([^?]*)(?:\?(.*))?\z/;
	my %arg;
	for (split /&/, $query // '') {
		my ($k, $v) = /^([^=]*)=?(.*)\z/s;
		push @{$arg{_decode($k)}}, _decode($v);
	}
	my $one = sub { my $a = $arg{$_[0]}; $a ? $a->[0] : undef };

	my $user = $one->('user');
	my @commands =
		$path =~ m!/login\z! ? ('login' . (defined $user ? " user=$user" : ''))
		: $path =~ m!/logout\z! ? ('logout')
		: $path =~ m!/everywhere\z!
			? ('logout-everywhere' . (defined $user ? " user=$user" : ''))
		: $path =~ m!/raw\z! ? @{$arg{v} || []}
		: ();

	if (defined(my $tag = $one->('wait'))) {
		$tag =~ s/[^A-Za-z0-9_-]//g;
		if (open my $fh, '>', "$dir/$tag.arrived") {
			close $fh;
		}
		for (1 .. 200) {
			last if -e "$dir/$tag.go";
			select undef, undef, undef, 0.05;
		}
	}

	my $seen_user = join '|', @{$in{'x-session-user'} || []};
	my $seen_control = $in{'x-paranoid-session'}
		? join('|', @{$in{'x-paranoid-session'}}) : 'none';
	my $size = $one->('size');
	my $body = defined $size ? app_body($size)
		: "user=[$seen_user] control=[$seen_control]\n";

	my $code = $one->('code') // 200;
	my $name = $one->('hdr') // 'X-Paranoid-Session';
	my $head = "HTTP/1.1 $code App\r\n"
		. "Content-Type: text/plain\r\n"
		. 'Content-Length: ' . length($body) . "\r\n"
		. "Connection: close\r\n"
		. "X-Seen-User: [$seen_user]\r\n"
		. "X-Seen-Control: [$seen_control]\r\n"
		. join('', map { "$name: $_\r\n" } @commands)
		. "\r\n";

	_write($client, $head);
	_write($client, $body) unless $method eq 'HEAD';
	close $client;
}

sub _write {
	my ($s, $buf) = @_;
	while (length $buf) {
		my $n = syswrite($s, $buf, 65536) or return;
		substr($buf, 0, $n, '');
	}
}

1;
