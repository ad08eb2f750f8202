#!/usr/bin/perl

# Tests for paranoid_session module: a new session over plain HTTP. The
# token, nonce and uid have their documented formats, the cookies carry
# their attributes in order, the session is found again, and the cookie
# names, path, domain, SameSite, prefix and Secure flag follow the
# configuration.

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

        location / {
            paranoid_session on;
        }

        location /custom {
            paranoid_session on;
            paranoid_cookie sid path=/custom domain=example.com
                            samesite=strict;
            paranoid_nonce_cookie snonce;
            paranoid_secure_cookie skey;
        }

        location /none {
            paranoid_session on;
            paranoid_cookie sid2 samesite=none;
            paranoid_cookie_secure on;
        }

        location /host {
            paranoid_session on;
            paranoid_cookie hsid prefix=__Host-;
        }

        location /secure_on {
            paranoid_session on;
            paranoid_cookie son;
            paranoid_cookie_secure on;
        }

        location /secure_off {
            paranoid_session on;
            paranoid_cookie soff;
            paranoid_cookie_secure off;
        }

        location /off {
            paranoid_session off;
        }
    }
}

EOF

$t->write_file('index.html', 'hello');
$t->write_file($_, $_) for qw/ custom none host secure_on secure_off off /;

memcached_start($t, 11211);
$t->run();

$t->plan(37);

###############################################################################

my $TOKEN = qr/[A-Za-z0-9_-]{43}/;
my $NONCE = qr/[A-Za-z0-9_-]{22}/;

# a new session

my $b = browser();
my $r = $b->get('/');
my $v = session_vars($r);
like($r, qr/^HTTP\/1\.1 200 .*hello$/s, 'new: served');
is($v->{status}, 'new', 'new: status');
like($v->{uid} // '', qr/^[0-9a-f]{32}\z/, 'new: uid is 32 lowercase hex');
is($v->{violation}, '', 'new: no violation');

my $c = set_cookies($r);
like($c->{sessionid}{value} // '', qr/^$TOKEN\z/, 'new: token format');
like($c->{sessionnonce}{value} // '', qr/^$NONCE\z/, 'new: nonce format');
ok(!$c->{'__Secure-sessionid_https'} && !$c->{sessionid_https},
	'new: no secure key over http');
like($r, qr/^Set-Cookie: sessionid=$TOKEN; Path=\/; HttpOnly; SameSite=Lax\r$/m,
	'new: token cookie attributes');
like($r,
	qr/^Set-Cookie: sessionnonce=$NONCE; Path=\/; HttpOnly; SameSite=Lax\r$/m,
	'new: nonce cookie attributes');
is(set_cookie_count($r, 'sessionid'), 1, 'new: token set once');
is(set_cookie_count($r, 'sessionnonce'), 1, 'new: nonce set once');
isnt(lc($c->{sessionid}{value} // ''), $v->{uid}, 'new: token is not the uid');

# the same client again: the session is found, nothing is set anew

my $uid = $v->{uid} // '';
$r = $b->get('/');
$v = session_vars($r);
is($v->{status}, 'valid', 'again: status valid');
is($v->{uid}, $uid, 'again: same uid');
is($v->{violation}, '', 'again: no violation');
is(set_cookie_count($r, 'sessionid'), 0, 'again: token not set again');

# sessions are distinct

my (%tokens, %uids);
for (1 .. 20) {
	my $r = http_get('/');
	$tokens{session_cookie($r) // ''}++;
	$uids{session_vars($r)->{uid} // ''}++;
}
$tokens{$b->cookie('sessionid') // ''}++;
$uids{$uid}++;
is(scalar(grep { /^$TOKEN\z/ } keys %tokens), 21, '21 distinct tokens');
is(scalar(grep { /^[0-9a-f]{32}\z/ } keys %uids), 21, '21 distinct uids');

# custom names, path, domain and samesite apply to every cookie

$b = browser();
$r = $b->get('/custom');
is(session_vars($r)->{status}, 'new', 'custom: new');
like($r, qr/^Set-Cookie:\ sid=$TOKEN;\ Path=\/custom;\ Domain=example\.com;
	\ HttpOnly;\ SameSite=Strict\r$/mx, 'custom: token cookie');
like($r, qr/^Set-Cookie:\ snonce=$NONCE;\ Path=\/custom;\ Domain=example\.com;
	\ HttpOnly;\ SameSite=Strict\r$/mx, 'custom: nonce cookie');
unlike($r, qr/^Set-Cookie: (sessionid|sessionnonce|skey)=/m,
	'custom: no default names, no secure key over http');
$uid = session_vars($r)->{uid} // '';
$v = session_vars($b->get('/custom'));
is($v->{status}, 'valid', 'custom: found again by its names');
is($v->{uid}, $uid, 'custom: same uid');

# samesite=none with Secure

$r = http_get('/none');
like($r, qr/^Set-Cookie:\ sid2=$TOKEN;\ Path=\/;\ HttpOnly;\ Secure;
	\ SameSite=None\r$/mx, 'samesite none: Secure');
like($r, qr/^Set-Cookie:\ sessionnonce=$NONCE;\ Path=\/;\ HttpOnly;\ Secure;
	\ SameSite=None\r$/mx, 'samesite none: nonce Secure');

# prefix=__Host- applies to every cookie name and implies Secure

$b = browser();
$r = $b->get('/host');
like($r, qr/^Set-Cookie:\ __Host-hsid=$TOKEN;\ Path=\/;\ HttpOnly;\ Secure;
	\ SameSite=Lax\r$/mx, 'prefix: token cookie');
like($r, qr/^Set-Cookie:\ __Host-sessionnonce=$NONCE;\ Path=\/;\ HttpOnly;
	\ Secure;\ SameSite=Lax\r$/mx, 'prefix: nonce cookie');
unlike($r, qr/^Set-Cookie: (hsid|sessionnonce)=/m, 'prefix: no bare names');
$uid = session_vars($r)->{uid} // '';
$v = session_vars($b->get('/host'));
is($v->{status}, 'valid', 'prefix: found again by the prefixed name');
is($v->{uid}, $uid, 'prefix: same uid');

# the right token under the bare name is not the prefixed cookie

$r = get_with('/host', cookie_header(hsid => $b->cookie('__Host-hsid') // '',
	sessionnonce => $b->cookie('__Host-sessionnonce') // ''));
is(session_vars($r)->{status}, 'new', 'prefix: bare name not read');

# paranoid_cookie_secure on and off over plain http

like(http_get('/secure_on'),
	qr/^Set-Cookie: son=$TOKEN; Path=\/; HttpOnly; Secure; SameSite=Lax\r$/m,
	'cookie_secure on: Secure over http');
like(http_get('/secure_off'),
	qr/^Set-Cookie: soff=$TOKEN; Path=\/; HttpOnly; SameSite=Lax\r$/m,
	'cookie_secure off: no Secure');

# off: nothing

$r = http_get('/off');
like($r, qr/^HTTP\/1\.1 200 .*off$/s, 'off: served');
unlike($r, qr/^Set-Cookie/mi, 'off: no cookie');
is(session_vars($r)->{status}, '', 'off: status empty');

###############################################################################
