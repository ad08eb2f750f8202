#!/usr/bin/perl

# Tests for paranoid_session module: paranoid_session_destroy (logout: the
# session is deleted, its cookies expired, the request goes on) and
# paranoid_session_bypass (nothing checked, nothing set).

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

    paranoid_session_store 127.0.0.1:%%PORT_11211%%;

    server {
        listen       127.0.0.1:8080;
        server_name  localhost;

        add_header X-Status "[$paranoid_session_status]" always;
        add_header X-Uid "[$paranoid_session_uid]" always;
        add_header X-Violation "[$paranoid_session_violation]" always;

        location /app {
            paranoid_session on;
        }

        location /logout {
            paranoid_session on;
            paranoid_session_destroy on;
        }

        location /bypass {
            paranoid_session on;
            paranoid_session_bypass $http_x_bypass;
        }
    }
}

EOF

$t->write_file($_, $_) for qw/ app logout bypass /;

memcached_start($t, 11211);
$t->run();

$t->plan(24);

###############################################################################

my $EXPIRED = qr/Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:01 GMT; HttpOnly;/;

# destroy

my $b = browser();
$b->get('/app');
my $uid = session_vars($b->get('/app'))->{uid} // '';
my $jar = $b->cookies;

my $r = $b->get('/logout');
my $v = session_vars($r);
like($r, qr/^HTTP\/1\.1 200 .*logout$/s, 'destroy: request goes on');
is($v->{status}, 'destroyed', 'destroy: status');
like($r, qr/^Set-Cookie: sessionid=[^;\r]*; Path=\/; $EXPIRED SameSite=Lax\r$/m,
	'destroy: token cookie expired');
like($r, qr/^Set-Cookie: sessionnonce=[^;\r]*; Path=\/; $EXPIRED SameSite=Lax\r$/m,
	'destroy: nonce cookie expired');
is(set_cookie_count($r, 'sessionid'), 1, 'destroy: token cookie once');
unlike($r, qr/^Set-Cookie: sessionid=[A-Za-z0-9_-]{43};/m,
	'destroy: no new token');
ok(!defined $b->cookie('sessionid'), 'destroy: the browser dropped it');

# the old cookies are unknown now

$v = session_vars($b->get('/app', cookies => $jar, keep => 0));
is($v->{status}, 'new', 'destroy: old token unknown');
isnt($v->{uid}, $uid, 'destroy: another uid');

# the browser, without cookies, starts anew

$v = session_vars($b->get('/app'));
is($v->{status}, 'new', 'after logout: new session');
is(set_cookie_count($b->last_response, 'sessionid'), 1,
	'after logout: token set');

# logout without a session: goes on, nothing to keep

$r = http_get('/logout');
like($r, qr/^HTTP\/1\.1 200 .*logout$/s, 'destroy without session: 200');
unlike($r, qr/^Set-Cookie: sessionid=[A-Za-z0-9_-]{43};/m,
	'destroy without session: no new token');

# bypass: nothing is checked or set

$r = get_with('/bypass', 'X-Bypass: 1');
$v = session_vars($r);
like($r, qr/^HTTP\/1\.1 200 .*bypass$/s, 'bypass: served');
is($v->{status}, 'bypass', 'bypass: status');
is($v->{uid}, '', 'bypass: no uid');
unlike($r, qr/^Set-Cookie/mi, 'bypass: no cookie');

# a session whose checks would fail is not touched either

$b = browser();
$b->get('/bypass');
$uid = session_vars($b->get('/bypass'))->{uid} // '';
$r = $b->clone(ua => 'Thief/1.0')->get('/bypass', headers => ['X-Bypass: 1'],
	drop => ['sessionnonce']);
$v = session_vars($r);
is($v->{status}, 'bypass', 'bypass: wrong ua and no nonce not checked');
unlike($r, qr/^Set-Cookie/mi, 'bypass: still no cookie');
$v = session_vars($b->get('/bypass'));
is($v->{status}, 'valid', 'bypass: session intact afterwards');
is($v->{uid}, $uid, 'bypass: same uid');

# "0" and absent mean no bypass

$r = get_with('/bypass', 'X-Bypass: 0');
is(session_vars($r)->{status}, 'new', 'bypass 0: checked');
like(session_cookie($r) // '', qr/^[A-Za-z0-9_-]{43}\z/, 'bypass 0: token set');

$v = session_vars($b->clone(ua => 'Thief/1.0')->get('/bypass'));
is($v->{violation}, 'fingerprint', 'no bypass header: checked');

###############################################################################
