#!/usr/bin/perl

# Tests for paranoid_session module: a stalled memcached (SIGSTOP) never
# blocks the worker. Other requests of the same worker are served at once;
# the session request ends at paranoid_session_store_timeout with 503 (deny)
# or passes with status "error" (allow), and the error log names the server.

###############################################################################

use warnings;
use strict;

use Test::More;
use Time::HiRes qw/ time /;

BEGIN { use FindBin; chdir($FindBin::Bin); }

# t/lib's Test::Nginx, unless PERL5LIB points at an nginx-tests checkout.
BEGIN { push @INC, 'lib'; }
use Test::Nginx qw/ :DEFAULT http_start http_end /;
use Test::Paranoid;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/http/)->has_daemon('memcached');

$t->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

daemon off;
worker_processes 1;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    # The store tests follow only the token cookie.
    paranoid_nonce_timeout off;
    paranoid_session_store 127.0.0.1:%%PORT_11211%%;
    paranoid_session_store_timeout 1s;

    server {
        listen       127.0.0.1:8080;
        server_name  localhost;

        add_header X-Status "[$paranoid_session_status]" always;

        location /deny {
            paranoid_session on;
        }
        location /allow {
            paranoid_session on;
            paranoid_session_store_failure allow;
        }
        location /off {
            paranoid_session off;
        }
    }
}

EOF

$t->write_file('deny', 'deny');
$t->write_file('allow', 'allow');
$t->write_file('off', 'off');

memcached_start($t, 11211);
$t->run();

$t->plan(15);

###############################################################################

like(http_get('/deny'), qr/200 OK.*\[new\]/s, 'session works before the stall');

my $pid = memcached_pid(11211);
ok($pid, 'memcached pid found');
kill 'STOP', $pid;

# deny: a waiting session request does not hold up the worker

my $start = time();
my $s = http_start("GET /deny HTTP/1.0\r\nHost: localhost\r\n\r\n");
select undef, undef, undef, 0.2;

my $t0 = time();
my $r = http_get('/off');
my $off_took = time() - $t0;
like($r, qr/200 OK.*off$/s, 'other location served during the stall');
cmp_ok($off_took, '<', 0.1, 'other location answered in under 100 ms');

$r = http_end($s);
my $took = time() - $start;
like($r, qr/^HTTP\/1\.1 503 /, 'deny: 503 at the store timeout');
cmp_ok($took, '>=', 0.9, 'deny: waited for the timeout');
cmp_ok($took, '<', 3, 'deny: not much longer than the timeout');

# allow: the request passes with status "error"

$start = time();
$r = http_get('/allow');
$took = time() - $start;
like($r, qr/200 OK.*\[error\].*allow$/s, 'allow: 200 with status error');
cmp_ok($took, '>=', 0.9, 'allow: waited for the timeout');

# a client that leaves while its request waits for memcached

$s = http_start("GET /deny HTTP/1.0\r\nHost: localhost\r\n\r\n");
select undef, undef, undef, 0.2;
close $s;
select undef, undef, undef, 1.2;
like(http_get('/off'), qr/200 OK.*off$/s, 'worker fine after a client left');

kill 'CONT', $pid;

like(http_get('/deny'), qr/200 OK.*\[new\]/s, 'sessions work again after');

$t->stop();

my @lines = grep { /no answer within 1000ms/ && !/\[debug\]/ } split /\n/, $t->read_file('error.log');
is(scalar @lines, 2, 'one error line per failed request');
like($lines[0] // '', qr/\[error\].*memcached 127\.0\.0\.1:\d+: no answer/,
	'error line names the server');

my $log = $t->read_file('error.log');
like($log, qr/client (prematurely )?closed/i, 'client leaving noticed');
unlike($log, qr/\[(alert|crit|emerg)\]|exited on signal/, 'no crash');

###############################################################################
