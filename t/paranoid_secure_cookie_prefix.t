#!/usr/bin/perl

# Tests for paranoid_session module: the secure key's cookie carries the
# __Secure- prefix by default (__Secure-sessionid_https), so that a plain
# HTTP attacker cannot plant it: browsers refuse a __Secure- cookie that is
# not Secure or comes from an insecure origin. A cookie under the old bare
# name (sessionid_https) is not read as the secure key. A name given to
# paranoid_secure_cookie may carry __Secure- or __Host- itself; the prefix
# of paranoid_cookie still applies, __Host- winning over __Secure-.

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

        location /deny {
            paranoid_session on;
            paranoid_cookie dsid;
            paranoid_on_violation deny;
        }

        location /named {
            paranoid_session on;
            paranoid_cookie nsid;
            paranoid_secure_cookie __Secure-skey;
        }

        location /hostkey {
            paranoid_session on;
            paranoid_cookie hksid;
            paranoid_secure_cookie __Host-hkey;
        }

        location /bare {
            paranoid_session on;
            paranoid_cookie bsid;
            paranoid_secure_cookie bkey;
        }

        location /host {
            paranoid_session on;
            paranoid_cookie hsid prefix=__Host-;
        }

        location /both {
            paranoid_session on;
            paranoid_cookie bosid prefix=__Secure-;
            paranoid_secure_cookie __Secure-bokey;
        }

        location /stronger {
            paranoid_session on;
            paranoid_cookie stsid prefix=__Host-;
            paranoid_secure_cookie __Secure-stkey;
        }

        location /insecure {
            paranoid_session on;
            paranoid_cookie isid;
            paranoid_cookie_secure off;
        }
    }
}

EOF

$t->write_file('index.html', 'hello');
$t->write_file($_, $_)
	for qw/ deny named hostkey bare host both stronger insecure /;
make_cert($t, 'localhost');

memcached_start($t, 11211);
$t->run();

$t->plan(36);

###############################################################################

my $KEY = qr/[A-Za-z0-9_-]{22}/;

# A valid session started over https: the browser and its uid.
sub https_session {
	my $b = browser(ssl => 1);
	$b->get('/');
	return ($b, session_vars($b->get('/'))->{uid} // '');
}

# The value of the secure key a browser holds, whatever its cookie's name.
sub secure_key {
	my ($b) = @_;
	return $b->cookie('__Secure-sessionid_https')
		// $b->cookie('sessionid_https') // '';
}

# the default name over https: __Secure-, Secure, HttpOnly

my $b = browser(ssl => 1);
my $r = $b->get('/');
my $v = session_vars($r);
my $uid = $v->{uid} // '';
is($v->{status}, 'new', 'default: new over https');
like($r, qr/^Set-Cookie:\ __Secure-sessionid_https=$KEY;\ Path=\/;\ HttpOnly;
	\ Secure;\ SameSite=Lax\r$/mx, 'default: __Secure- name, Secure, HttpOnly');
is(set_cookie_count($r, '__Secure-sessionid_https'), 1, 'default: set once');
is(set_cookie_count($r, 'sessionid_https'), 0, 'default: no bare name');

# read back under that name

$r = $b->get('/');
$v = session_vars($r);
is($v->{status}, 'valid', 'default: valid with the __Secure- cookie');
is($v->{uid}, $uid, 'default: same uid');
is(set_cookie_count($r, '__Secure-sessionid_https'), 0,
	'default: not set again');

# a planted bare sessionid_https next to the real key changes nothing

($b, $uid) = https_session();
$v = session_vars($b->get('/', add => { sessionid_https => 'A' x 22 }));
is($v->{status}, 'valid', 'planted beside: ignored');
is($v->{uid}, $uid, 'planted beside: same uid');

# the real key under the bare name is not the secure key

($b, $uid) = https_session();
$v = session_vars($b->get('/', drop => ['__Secure-sessionid_https'],
	add => { sessionid_https => secure_key($b) }));
is($v->{status}, 'violation', 'bare name: violation');
is($v->{violation}, 'secure_key', 'bare name: reason');

# fixation: an attacker's token, nonce and secure key, planted over plain
# http (so the key only under a name without __Secure-) do not make a
# valid https session

my ($attacker, $auid) = https_session();
my $victim = browser(ssl => 1)->set(
	sessionid => $attacker->cookie('sessionid') // '',
	sessionnonce => $attacker->cookie('sessionnonce') // '',
	sessionid_https => secure_key($attacker));
$v = session_vars($victim->get('/'));
is($v->{status}, 'violation', 'planted: violation');
is($v->{violation}, 'secure_key', 'planted: reason');
isnt($v->{uid}, $auid, 'planted: not the attacker\'s session');

# plain http: the __Secure- cookie is never set, nor expired (a browser
# would refuse both)

$b = browser();
$r = $b->get('/');
is(set_cookie_count($r, '__Secure-sessionid_https'), 0, 'http: not set');
$r = $b->get('/', ssl => 1);
like(set_cookies($r)->{'__Secure-sessionid_https'}{line} // '',
	qr/^__Secure-sessionid_https=$KEY; Path=\/; HttpOnly; Secure;/,
	'upgrade: set on the first https request');
is(session_vars($b->get('/', ssl => 1))->{status}, 'valid', 'upgrade: valid');

$b = browser(ssl => 1);
$b->get('/deny');
$r = $b->get('/deny', ssl => 0, ua => 'Thief/1.0');
like($r, qr/^HTTP\/1\.1 403 /, 'deny over http: 403');
unlike($r, qr/^Set-Cookie: [^=\r]*sessionid_https=/m,
	'deny over http: secure key cookie left alone');
$b = browser(ssl => 1);
$b->get('/deny');
$r = $b->get('/deny', ua => 'Thief/1.0');
like($r, qr/^Set-Cookie:\ __Secure-sessionid_https=;\ Path=\/;\ Max-Age=0;
	[^\r]*;\ Secure;[^\r]*\r$/mx, 'deny over https: expired, Secure');

# paranoid_cookie_secure off: the secure key's cookie stays Secure

$r = browser(ssl => 1)->get('/insecure');
like($r, qr/^Set-Cookie:\ __Secure-sessionid_https=$KEY;\ Path=\/;\ HttpOnly;
	\ Secure;/mx, 'cookie_secure off: secure key still Secure');

# a name of one's own with __Secure-: kept once, read back

$b = browser(ssl => 1);
$r = $b->get('/named');
like($r, qr/^Set-Cookie:\ __Secure-skey=$KEY;\ Path=\/;\ HttpOnly;\ Secure;
	\ SameSite=Lax\r$/mx, 'named: __Secure-skey');
unlike($r, qr/__Secure-__Secure-|^Set-Cookie: skey=/m, 'named: no other form');
is(session_vars($b->get('/named'))->{status}, 'valid', 'named: valid');
is(session_vars($b->get('/named', drop => ['__Secure-skey']))->{violation},
	'secure_key', 'named: required');

# __Host- on the name: kept

$b = browser(ssl => 1);
$r = $b->get('/hostkey');
like($r, qr/^Set-Cookie:\ __Host-hkey=$KEY;\ Path=\/;\ HttpOnly;\ Secure;
	\ SameSite=Lax\r$/mx, 'host key: __Host-hkey');
is(session_vars($b->get('/hostkey'))->{status}, 'valid', 'host key: valid');

# a name without a prefix is the operator's choice: used as written

$b = browser(ssl => 1);
$r = $b->get('/bare');
like($r, qr/^Set-Cookie: bkey=$KEY; Path=\/; HttpOnly; Secure;/m,
	'bare name: as written');
is(session_vars($b->get('/bare'))->{status}, 'valid', 'bare name: valid');

# paranoid_cookie prefix=__Host- wins over the default's __Secure-

$b = browser(ssl => 1);
$r = $b->get('/host');
like($r, qr/^Set-Cookie:\ __Host-sessionid_https=$KEY;\ Path=\/;\ HttpOnly;
	\ Secure;\ SameSite=Lax\r$/mx, 'token __Host-: __Host-sessionid_https');
unlike($r, qr/__Secure-/, 'token __Host-: no __Secure- left');
is(session_vars($b->get('/host'))->{status}, 'valid', 'token __Host-: valid');

# the same prefix on both: once

$b = browser(ssl => 1);
$r = $b->get('/both');
like($r, qr/^Set-Cookie:\ __Secure-bokey=$KEY;\ Path=\/;\ HttpOnly;\ Secure;
	\ SameSite=Lax\r$/mx, 'both __Secure-: __Secure-bokey');
is(session_vars($b->get('/both'))->{status}, 'valid', 'both __Secure-: valid');

# __Secure- on the name, __Host- on the token: __Host-, not both

$b = browser(ssl => 1);
$r = $b->get('/stronger');
like($r, qr/^Set-Cookie:\ __Host-stkey=$KEY;\ Path=\/;\ HttpOnly;\ Secure;
	\ SameSite=Lax\r$/mx, 'stronger: __Host-stkey');
is(session_vars($b->get('/stronger'))->{status}, 'valid', 'stronger: valid');

###############################################################################
