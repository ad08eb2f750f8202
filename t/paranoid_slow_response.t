#!/usr/bin/perl

# Tests for paranoid_session module: a slow response does not log the user
# out. A request renews the nonce (or cycles the token) when the access
# phase decides, but the client learns the new value only when the response
# headers arrive. Until then, and for paranoid_nonce_window_timeout after,
# overlapping requests that carry the previous nonce or token are accepted.
# The upstream here takes about 4 seconds, four times the window timeout.

###############################################################################

use warnings;
use strict;

use Test::More;

use IO::Socket::INET;

BEGIN { use FindBin; chdir($FindBin::Bin); }

# t/lib's Test::Nginx, unless PERL5LIB points at an nginx-tests checkout.
BEGIN { push @INC, 'lib'; }
use Test::Nginx qw/ :DEFAULT http_start http_end /;
use Test::Paranoid;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/http proxy/)->has_daemon('memcached');

$t->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

daemon off;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    paranoid_session_store 127.0.0.1:%%PORT_11211%%;

    paranoid_nonce_timeout 0;
    paranoid_nonce_window 1;
    paranoid_nonce_window_timeout 1s;

    server {
        listen       127.0.0.1:8080;
        server_name  localhost;

        add_header X-Status "[$paranoid_session_status]" always;
        add_header X-Uid "[$paranoid_session_uid]" always;
        add_header X-Violation "[$paranoid_session_violation]" always;

        location /fast {
            paranoid_session on;
        }

        location /slow {
            paranoid_session on;
            proxy_pass http://127.0.0.1:%%PORT_8081%%;
        }

        location /slowcycle {
            paranoid_session on;
            paranoid_key_timeout 1s;
            proxy_pass http://127.0.0.1:%%PORT_8081%%;
        }
    }
}

EOF

$t->write_file('fast', 'fast');

memcached_start($t, 11211);
$t->run_daemon(\&slow_daemon, port(8081));
$t->waitforsocket('127.0.0.1:' . port(8081));
$t->run();

$t->plan(39);

###############################################################################

my $NONCE = qr/[A-Za-z0-9_-]{22}/;
my $TOKEN = qr/[A-Za-z0-9_-]{43}/;

# Requests made while the slow response is pending, and the pause between.
my ($DURING, $EVERY) = (6, 0.5);

# A session started at /fast: the browser and its uid.
sub fast_session {
	my $b = browser();
	my $v = session_vars($b->get('/fast'));
	return ($b, $v->{uid} // '');
}

# Sends a slow request with the browser's cookies; then, while it is
# pending, $DURING requests to /fast with those same cookies. Returns the
# slow response and the variables of each /fast response.
sub during_slow {
	my ($b, $uri) = @_;
	my %sent = %{$b->cookies()};
	my $s = $b->start($uri);
	# let the slow request be decided before the first overlapping one
	select undef, undef, undef, 0.3;
	my @during;
	for my $i (1 .. $DURING) {
		push @during, session_vars($b->get('/fast', cookies => \%sent,
			keep => 0));
		select undef, undef, undef, $EVERY if $i < $DURING;
	}
	my $r = $s ? http_end($s) : undef;
	$b->absorb($r) if defined $r;
	return ($r, @during);
}

# a renewed nonce: the previous one stays good while the response is slow

my ($b, $uid) = fast_session();
my $n0 = $b->cookie('sessionnonce') // '';
like($n0, qr/^$NONCE\z/, 'nonce: session has a nonce');

my ($r, @during) = during_slow($b, '/slow');
for my $i (0 .. $#during) {
	my $at = sprintf '%.1fs', 0.3 + $i * $EVERY;
	is($during[$i]{status}, 'valid', "nonce: previous nonce at $at valid");
	is($during[$i]{uid}, $uid, "nonce: same uid at $at");
}
is(scalar(grep { ($_->{status} // '') eq 'violation' } @during), 0,
	'nonce: no violation while the response is pending');

like($r // '', qr/^HTTP\/1\.1 200 .*slow$/s, 'nonce: slow response 200');
my $n1 = set_cookies($r)->{sessionnonce}{value} // '';
like($n1, qr/^$NONCE\z/, 'nonce: slow response renews the nonce');
isnt($n1, $n0, 'nonce: a new nonce');

# the client has just received the new nonce: the window timeout starts now

my $v = session_vars($b->get('/fast', add => { sessionnonce => $n0 },
	keep => 0));
is($v->{status}, 'valid', 'nonce: previous nonce valid just after');

$v = session_vars($b->get('/fast'));
is($v->{status}, 'valid', 'nonce: new nonce valid after');
is($v->{uid}, $uid, 'nonce: same uid after');

# a cycled token: the old token and nonce stay good while the response is
# slow, and the new token works after

($b, $uid) = fast_session();
$n0 = $b->cookie('sessionnonce') // '';
my $t0 = $b->cookie('sessionid') // '';
like($t0, qr/^$TOKEN\z/, 'cycle: session has a token');
# the key must be older than paranoid_key_timeout to cycle
select undef, undef, undef, 1.2;

($r, @during) = during_slow($b, '/slowcycle');
for my $i (0 .. $#during) {
	my $at = sprintf '%.1fs', 0.3 + $i * $EVERY;
	is($during[$i]{status}, 'valid', "cycle: old token at $at valid");
	is($during[$i]{uid}, $uid, "cycle: same uid at $at");
}

like($r // '', qr/^HTTP\/1\.1 200 .*slow$/s, 'cycle: slow response 200');
my $t1 = set_cookies($r)->{sessionid}{value} // '';
like($t1, qr/^$TOKEN\z/, 'cycle: slow response cycles the token');
isnt($t1, $t0, 'cycle: a new token');

$v = session_vars($b->get('/fast', add => { sessionid => $t0,
	sessionnonce => $n0 }, keep => 0));
is($v->{status}, 'valid', 'cycle: old token valid just after');

$v = session_vars($b->get('/fast'));
is($v->{status}, 'valid', 'cycle: new token valid after');
is($v->{uid}, $uid, 'cycle: same uid after');

###############################################################################

# An HTTP upstream on $port that answers every request after 4 seconds.
sub slow_daemon {
	my ($port) = @_;
	my $server = IO::Socket::INET->new(
		Proto => 'tcp',
		LocalAddr => "127.0.0.1:$port",
		Listen => 16,
		ReuseAddr => 1,
	) or die "Can't create listening socket: $!\n";

	local $SIG{PIPE} = 'IGNORE';

	while (my $client = $server->accept()) {
		$client->autoflush(1);
		while (my $line = <$client>) {
			last if $line =~ /^\r?\n\z/;
		}
		select undef, undef, undef, 4;
		print $client "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n"
			. "Connection: close\r\n\r\nslow";
		close $client;
	}
}

###############################################################################
