#!/usr/bin/perl

# Tests for paranoid_session module: memcached killed and started again on
# the same port. While it is down, requests get the failure policy; once it
# is back, sessions work again without reloading nginx.

###############################################################################

use warnings;
use strict;

use Test::More;

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

    # The store tests follow only the token cookie.
    paranoid_nonce_timeout off;
    paranoid_session_store 127.0.0.1:%%PORT_11211%%;
    paranoid_session_store_keepalive 4;

    server {
        listen       127.0.0.1:8080;
        server_name  localhost;

        add_header X-Status "[$paranoid_session_status]" always;
        add_header X-Uid "[$paranoid_session_uid]" always;

        location /deny {
            paranoid_session on;
        }
        location /allow {
            paranoid_session on;
            paranoid_session_store_failure allow;
        }
    }
}

EOF

$t->write_file('deny', 'deny');
$t->write_file('allow', 'allow');

memcached_start($t, 11211);
$t->run();

$t->plan(10);

###############################################################################

my $r = http_get('/deny');
like($r, qr/200 OK.*\[new\]/s, 'new session');
my $token = session_cookie($r);
like(get_with('/deny', cookie_header(sessionid => $token)),
	qr/\[valid\]/, 'session valid');

kill 'TERM', memcached_pid(11211);
select undef, undef, undef, 0.1 while memcached_pid(11211);

like(http_get('/deny'), qr/^HTTP\/1\.1 503 /, 'down: deny answers 503');
like(get_with('/deny', cookie_header(sessionid => $token)),
	qr/^HTTP\/1\.1 503 /, 'down: deny answers 503 to a session');
$r = http_get('/allow');
like($r, qr/200 OK.*\[error\].*allow$/s, 'down: allow passes with error');
unlike($r, qr/Set-Cookie/i, 'down: no cookie without a store');

memcached_start($t, 11211);

$r = http_get('/deny');
like($r, qr/200 OK.*\[new\]/s, 'up again: new session');
$token = session_cookie($r);
like(get_with('/deny', cookie_header(sessionid => $token)),
	qr/\[valid\]/, 'up again: session valid');

$t->stop();

my $log = $t->read_file('error.log');
like($log, qr/\[error\].*127\.0\.0\.1:\d+.*(refused|failed|closed)/,
	'error log names the server and why');
unlike($log, qr/\[(alert|crit|emerg)\]|exited on signal/, 'no crash or alert');

###############################################################################
