#!/usr/bin/perl

# Tests for paranoid_session module: a memcached on a unix socket.

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
my $sock = $t->testdir() . '/memcached.sock';

$t->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

daemon off;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    # The store tests follow only the token cookie.
    paranoid_nonce_timeout off;
    paranoid_session_store unix:%%TESTDIR%%/memcached.sock;

    server {
        listen       127.0.0.1:8080;
        server_name  localhost;

        add_header X-Status "[$paranoid_session_status]" always;
        add_header X-Uid "[$paranoid_session_uid]" always;

        location / {
            paranoid_session on;
        }
    }
}

EOF

$t->write_file('index.html', 'hello');

memcached_start($t, $sock);
$t->run();

$t->plan(5);

###############################################################################

my $r = http_get('/');
like($r, qr/200 OK.*\[new\]/s, 'new session over a unix socket');
my $token = session_cookie($r);
ok($token, 'token cookie set');
my ($uid) = $r =~ /X-Uid: \[([0-9a-f]{32})\]/;
ok($uid, 'uid set');

like(get_with('/', cookie_header(sessionid => $token)),
	qr/\[valid\].*\[\Q$uid\E\]/s, 'session found again');
is(memcached_stats($sock)->{curr_items}, 1, 'one record in memcached');

###############################################################################
