#!/usr/bin/perl

# Tests for paranoid_session module: contention alone never fails a
# request. A proxy between nginx and memcached makes every compare-and-swap
# lose: it rewrites the CAS value of each "ms" and "md" command to one that
# never matches, so memcached answers EX, while adds and reads pass
# unchanged. With every request renewing its nonce (or cycling its token),
# each request must still be answered 200 with its session valid, never
# 503 or status "error", even under paranoid_session_store_failure deny.

###############################################################################

use warnings;
use strict;

use Test::More;

use IO::Select;
use IO::Socket::INET;

BEGIN { use FindBin; chdir($FindBin::Bin); }

# t/lib's Test::Nginx, unless PERL5LIB points at an nginx-tests checkout.
BEGIN { push @INC, 'lib'; }
use Test::Nginx;
use Test::Paranoid;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/http/)->has_daemon('memcached');

$t->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

daemon off;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    # memcached through the proxy that makes every compare-and-swap lose
    paranoid_session_store 127.0.0.1:%%PORT_8082%%;
    paranoid_session_store_timeout 1s;
    paranoid_session_store_failure deny;
    paranoid_nonce_timeout 0;

    server {
        listen       127.0.0.1:8080;
        server_name  localhost;

        add_header X-Status "[$paranoid_session_status]" always;
        add_header X-Uid "[$paranoid_session_uid]" always;
        add_header X-Violation "[$paranoid_session_violation]" always;

        location /renew {
            paranoid_session on;
        }

        location /cycle {
            paranoid_session on;
            paranoid_key_timeout 1s;
        }
    }
}

EOF

$t->write_file('renew', 'renew');
$t->write_file('cycle', 'cycle');

my $LOG = $t->testdir() . '/cas.log';

memcached_start($t, 11211);
$t->run_daemon(\&cas_breaker, port(8082), port(11211), $LOG);
$t->waitforsocket('127.0.0.1:' . port(8082));
$t->run();

$t->plan(66);

###############################################################################

my $REQUESTS = 10;

# How many compare-and-swap commands the proxy has spoilt so far.
sub spoilt {
	open my $fh, '<', $LOG or return 0;
	my $n = () = do { local $/; <$fh> } =~ /\n/g;
	return $n;
}

# nonce renewal on every request: a compare-and-swap write each time

my $b = browser();
my $r = $b->get('/renew');
my $v = session_vars($r);
like($r, qr/^HTTP\/1\.1 200 .*renew$/s, 'renew: first request 200');
is($v->{status}, 'new', 'renew: session created');
my $uid = $v->{uid} // '';
like($uid, qr/^[0-9a-f]{32}\z/, 'renew: uid');

my $before = spoilt();
for my $i (1 .. $REQUESTS) {
	$r = $b->get('/renew');
	$v = session_vars($r);
	is($v->{code}, 200, "renew $i: 200");
	is($v->{status}, 'valid', "renew $i: valid");
	is($v->{uid}, $uid, "renew $i: same uid");
}
cmp_ok(spoilt(), '>', $before, 'renew: compare-and-swap writes were spoilt');

# token cycling: a compare-and-swap write of the session and its pointer

$b = browser();
$v = session_vars($b->get('/cycle'));
is($v->{status}, 'new', 'cycle: session created');
$uid = $v->{uid} // '';

# the key must be older than paranoid_key_timeout to cycle
select undef, undef, undef, 1.2;

$before = spoilt();
for my $i (1 .. $REQUESTS) {
	$r = $b->get('/cycle');
	$v = session_vars($r);
	is($v->{code}, 200, "cycle $i: 200");
	like($v->{status} // '', qr/^(valid|rotated)\z/, "cycle $i: valid");
	is($v->{uid}, $uid, "cycle $i: same uid");
}
cmp_ok(spoilt(), '>', $before, 'cycle: compare-and-swap writes were spoilt');

###############################################################################

# A TCP proxy from 127.0.0.1:$port to memcached on $to. Replies pass
# unchanged; requests pass in order, except that the CAS flag (C<number>)
# of every ms and md command is replaced by one memcached never issued
# (each replacement is logged as a line in $log). Data blocks of ms pass
# verbatim.
sub cas_breaker {
	my ($port, $to, $log) = @_;
	my $server = IO::Socket::INET->new(
		Proto => 'tcp',
		LocalAddr => "127.0.0.1:$port",
		Listen => 16,
		ReuseAddr => 1,
	) or die "Can't create listening socket: $!\n";

	local $SIG{PIPE} = 'IGNORE';
	local $SIG{CHLD} = 'IGNORE';

	while (my $client = $server->accept()) {
		my $pid = fork();
		next if !defined $pid || $pid;
		close $server;
		my $mc = IO::Socket::INET->new(Proto => 'tcp',
			PeerAddr => "127.0.0.1:$to") or exit 1;
		memcached_relay($client, $mc, sub { (spoil($_[0], $log))[0] });
		exit 0;
	}
}


# One request line: the line to send on, and for ms the length of the data
# block that follows (without its CRLF).
sub spoil {
	my ($line, $log) = @_;
	my ($cmd) = $line =~ /^(\S+)/;
	return ($line) unless defined $cmd && $cmd =~ /^m[sd]\z/;

	(my $body = $line) =~ s/\r?\n\z//;
	my ($c, $key, @rest) = split / /, $body;
	my $len;
	if ($cmd eq 'ms') {
		$len = shift @rest if @rest && $rest[0] =~ /^\d+\z/;
		($len) = map { /^S(\d+)\z/ } @rest unless defined $len;
	}
	my $spoilt = 0;
	for (@rest) {
		$spoilt++ if s/^C\d+\z/C999999999999/;
	}
	if ($spoilt && open my $fh, '>>', $log) {
		syswrite($fh, "$cmd $key\n");
		close $fh;
	}
	my $new = join ' ', $c, $key, ($cmd eq 'ms' && $body =~ /^ms \S+ \d+/
		? ($len) : ()), @rest;
	return ("$new\r\n", $len);
}


###############################################################################
