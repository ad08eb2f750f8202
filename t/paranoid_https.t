#!/usr/bin/perl

# Tests for paranoid_session module: sessions over HTTPS. Cookies are
# Secure; the session gets a second key (__Secure-sessionid_https) that every
# later HTTPS request must present, while plain HTTP requests of the same
# session never get it and are not checked for it.

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

my $t = Test::Nginx->new()->has(qw/http http_ssl socket_ssl/)
	->has_daemon('memcached')->has_daemon('openssl');

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
        listen       127.0.0.1:8443 ssl;
        server_name  localhost;

        ssl_certificate     localhost.crt;
        ssl_certificate_key localhost.key;

        add_header X-Status "[$paranoid_session_status]" always;
        add_header X-Uid "[$paranoid_session_uid]" always;
        add_header X-Violation "[$paranoid_session_violation]" always;

        location / {
            paranoid_session on;
        }

        location /nokey {
            paranoid_session on;
            paranoid_cookie nsid;
            paranoid_secure_cookie off;
        }

        location /insecure {
            paranoid_session on;
            paranoid_cookie isid;
            paranoid_cookie_secure off;
        }

        location /deny {
            paranoid_session on;
            paranoid_cookie dsid;
            paranoid_on_violation deny;
        }
    }
}

EOF

$t->write_file('index.html', 'hello');
$t->write_file($_, $_) for qw/ nokey insecure deny /;
make_cert($t, 'localhost');

memcached_start($t, 11211);
$t->run();

$t->plan(36);

###############################################################################

my $TOKEN = qr/[A-Za-z0-9_-]{43}/;
my $KEY = qr/[A-Za-z0-9_-]{22}/;
my $SK = '__Secure-sessionid_https';    # the secure key's cookie

# A session that starts over HTTPS; returns the browser and its uid.
sub https_session {
	my ($uri) = @_;
	my $b = browser(ssl => 1);
	my $r = $b->get($uri // '/');
	return ($b, session_vars($r)->{uid} // '', $r);
}

# a new session over https: everything Secure, the secure key set

my ($b, $uid, $r) = https_session();
my $v = session_vars($r);
like($r, qr/^HTTP\/1\.1 200 .*hello$/s, 'https: served');
is($v->{status}, 'new', 'https: new');
like($r, qr/^Set-Cookie:\ sessionid=$TOKEN;\ Path=\/;\ HttpOnly;\ Secure;
	\ SameSite=Lax\r$/mx, 'https: token cookie Secure');
like($r, qr/^Set-Cookie:\ sessionnonce=$KEY;\ Path=\/;\ HttpOnly;\ Secure;
	\ SameSite=Lax\r$/mx, 'https: nonce cookie Secure');
like($r, qr/^Set-Cookie:\ $SK=$KEY;\ Path=\/;\ HttpOnly;\ Secure;
	\ SameSite=Lax\r$/mx, 'https: secure key cookie');
is(set_cookie_count($r, $SK), 1, 'https: secure key set once');
isnt($b->cookie($SK), $b->cookie('sessionnonce'),
	'https: secure key is not the nonce');

# it is required from now on over https

$r = $b->get('/');
$v = session_vars($r);
is($v->{status}, 'valid', 'https: valid with the secure key');
is($v->{uid}, $uid, 'https: same uid');
is(set_cookie_count($r, $SK), 0,
	'https: secure key not set again');

# plain http: not set, not checked

$r = $b->get('/', ssl => 0, drop => [$SK]);
$v = session_vars($r);
is($v->{status}, 'valid', 'http: valid without the secure key');
is($v->{uid}, $uid, 'http: same uid');
is(set_cookie_count($r, $SK), 0, 'http: secure key not set');
unlike($r, qr/^Set-Cookie: [^\r]*Secure/m, 'http: nothing Secure (auto)');

$r = $b->get('/', ssl => 0, add => { $SK => 'A' x 22 });
is(session_vars($r)->{status}, 'valid', 'http: wrong secure key not checked');

is(session_vars($b->get('/'))->{status}, 'valid',
	'https: still valid after the http requests');

# https without the secure key: violation (clear)

$r = $b->get('/', drop => [$SK], keep => 0);
$v = session_vars($r);
like($r, qr/^HTTP\/1\.1 200 /, 'absent key: clear continues');
is($v->{status}, 'violation', 'absent key: violation');
is($v->{violation}, 'secure_key', 'absent key: reason');
my $c = set_cookies($r);
like($c->{sessionid}{value} // '', qr/^$TOKEN\z/, 'absent key: new token');
isnt($c->{sessionid}{value} // '', $b->cookie('sessionid'),
	'absent key: token differs');

# the cleared session is gone, even with the right key

$v = session_vars($b->get('/'));
isnt($v->{status}, 'valid', 'absent key: old session gone');
isnt($v->{uid}, $uid, 'absent key: old uid gone');

# https with a wrong secure key: violation

($b, $uid) = https_session();
$v = session_vars($b->get('/', add => { $SK => 'A' x 22 }));
is($v->{status}, 'violation', 'wrong key: violation');
is($v->{violation}, 'secure_key', 'wrong key: reason');

# deny mode: 403, cookies expired

($b, $uid) = https_session('/deny');
$r = $b->get('/deny', drop => [$SK]);
like($r, qr/^HTTP\/1\.1 403 /, 'deny: 403');
is(session_vars($r)->{violation}, 'secure_key', 'deny: reason');
like($r, qr/^Set-Cookie: dsid=[^;\r]*; Path=\/; Max-Age=0; (?x)
	Expires=Thu,\ 01\ Jan\ 1970\ 00:00:01\ GMT;\ HttpOnly;\ Secure;
	\ SameSite=Lax\r$/m, 'deny: token cookie expired');

# a session started over http is replaced on its first https request (its
# cookies could have been sniffed); the new one gets the secure key

$b = browser();
$r = $b->get('/');
$uid = session_vars($r)->{uid} // '';
is(set_cookie_count($r, $SK), 0, 'upgrade: none over http');
$r = $b->get('/', ssl => 1);
$v = session_vars($r);
is($v->{status}, 'new', 'upgrade: new over https');
isnt($v->{uid}, $uid, 'upgrade: new uid');
like(set_cookies($r)->{$SK}{line} // '',
	qr/^$SK=$KEY; Path=\/; HttpOnly; Secure; SameSite=Lax\z/,
	'upgrade: secure key set');
is(session_vars($b->get('/', ssl => 1, drop => [$SK]))
	->{violation}, 'secure_key', 'upgrade: then required');

# paranoid_secure_cookie off: no second key

$b = browser(ssl => 1);
$r = $b->get('/nokey');
unlike($r, qr/^Set-Cookie: [^=\r]*sessionid_https=/m,
	'secure cookie off: not set');
is(session_vars($b->get('/nokey'))->{status}, 'valid',
	'secure cookie off: not required');

# paranoid_cookie_secure off: no Secure even over https

like(http("GET /insecure HTTP/1.0\r\nHost: localhost\r\n\r\n",
		SSL => 1, PeerAddr => '127.0.0.1:' . port(8443)),
	qr/^Set-Cookie: isid=$TOKEN; Path=\/; HttpOnly; SameSite=Lax\r$/m,
	'cookie_secure off: no Secure over https');

###############################################################################
