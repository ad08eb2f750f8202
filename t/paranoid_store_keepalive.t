#!/usr/bin/perl

# Tests for paranoid_session module: the keepalive pool. Sequential session
# requests reuse one memcached connection; with the pool disabled every
# exchange dials anew. A store that fails at connect() time (no socket
# file) gets the failure policy at once.

###############################################################################

use warnings;
use strict;

use Test::More;

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

my $conf = <<'EOF';

%%TEST_GLOBALS%%

daemon off;
worker_processes 1;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    # The store tests follow only the token cookie.
    paranoid_nonce_timeout off;
    paranoid_session_store STORE;
    paranoid_session_store_keepalive KEEPALIVE;

    server {
        listen       127.0.0.1:8080;
        server_name  localhost;

        add_header X-Status "[$paranoid_session_status]" always;

        location / {
            paranoid_session on;
        }
        location /allow {
            paranoid_session on;
            paranoid_session_store_failure allow;
        }
    }
}

EOF

sub config {
	my ($store, $keepalive) = @_;
	(my $c = $conf) =~ s/STORE/$store/;
	$c =~ s/KEEPALIVE/$keepalive/;
	return $c;
}

$t->write_file('index.html', 'hello');
$t->write_file('allow', 'allow');
$t->write_file_expand('nginx.conf', config('127.0.0.1:%%PORT_11211%%', 2));

memcached_start($t, 11211);
$t->run();

$t->plan(11);

###############################################################################

# Each stats call is one connection of its own.
sub connections { memcached_stats(11211)->{total_connections} }

my $token = session_cookie(http_get('/'));
my $cookie = cookie_header(sessionid => $token);

my $before = connections();
my $valid = 0;
for (1 .. 1000) {
	$valid++ if get_with('/', $cookie) =~ /\[valid\]/;
}
is($valid, 1000, '1000 sequential session requests');
my $opened = connections() - $before - 1;
cmp_ok($opened, '<=', 1, "keepalive 2: $opened new connection(s)");

# 40 requests at once: their commands are pipelined on the open connection
# instead of dialling one connection each.

$before = connections();
my @socks = map {
	IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . port(8080))
		or die "connect: $!";
} 1 .. 40;
for my $s (@socks) {
	print $s "GET / HTTP/1.0\r\nHost: localhost\r\n$cookie\r\n\r\n";
}
$valid = 0;
for my $s (@socks) {
	local $/;
	my $r = <$s> // '';
	$valid++ if $r =~ /\[valid\]/;
}
is($valid, 40, '40 concurrent session requests');
$opened = connections() - $before - 1;
cmp_ok($opened, '<=', 1, "40 concurrent: $opened new connection(s)");

$t->stop();

# keepalive 0: every exchange dials anew, so the count above means something

$t->write_file_expand('nginx.conf', config('127.0.0.1:%%PORT_11211%%', 0));
$t->run();

$before = connections();
for (1 .. 20) {
	get_with('/', $cookie);
}
is(connections() - $before - 1, 20, 'keepalive 0: one connection per request');

$t->stop();

# connect() fails at once: a unix socket that does not exist

my $missing = $t->testdir() . '/missing.sock';
$t->write_file_expand('nginx.conf', config("unix:$missing", 2));
$t->run();

like(http_get('/'), qr/^HTTP\/1\.1 503 /, 'no socket: deny 503');
like(http_get('/'), qr/^HTTP\/1\.1 503 /, 'no socket: deny 503 again');
like(http_get('/allow'), qr/200 OK.*\[error\].*allow$/s,
	'no socket: allow passes with error');

$t->stop();

my $log = $t->read_file('error.log');
my @lines = grep { /missing\.sock/ && !/\[debug\]/ } split /\n/, $log;
is(scalar @lines, 3, 'one error line per failure');
like($lines[0] // '', qr/\[(error|crit)\].*connect\(\) to unix:.*missing\.sock failed/,
	'error line names the server and why');
unlike($log, qr/\[(alert|emerg)\]|exited on signal/, 'no crash');

###############################################################################
