#!/usr/bin/perl

# Tests for paranoid_session module: bindings are never adopted. A session
# born without a binding that a location checks is replaced there by a
# fresh one (status "new", new token, new uid, the old record ended),
# never bound to whoever presents its cookies first: a session born over
# plain HTTP on its first HTTPS request (its HTTP cookies could have been
# sniffed), a session created where paranoid_fingerprint is off in a
# location that fingerprints, one created with nonces off where nonces are
# on. paranoid_secure_cookie_upgrade on keeps django-paranoid-sessions'
# behaviour for the secure key: the HTTP-born session gets its key.

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

# Every location uses the default cookie names, so a browser's token is
# shared between them. $UPGRADE is filled in for the second run.
my $CONF = <<'EOF';

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
            $UPGRADE
        }

        location /nofp {
            paranoid_session on;
            paranoid_fingerprint off;
        }

        location /nononce {
            paranoid_session on;
            paranoid_nonce_timeout off;
        }
    }
}

EOF

sub write_conf {
	my ($t, $upgrade) = @_;
	(my $conf = $CONF) =~ s/\$UPGRADE/$upgrade/;
	$t->write_file_expand('nginx.conf', $conf);
}

write_conf($t, '');
$t->write_file('index.html', 'hello');
$t->write_file($_, $_) for qw/ nofp nononce /;
make_cert($t, 'localhost');

memcached_start($t, 11211);
$t->run();

$t->plan(38);

###############################################################################

my $TOKEN = qr/[A-Za-z0-9_-]{43}/;
my $KEY = qr/[A-Za-z0-9_-]{22}/;

# The secure key cookie's default name, with or without a __Secure- prefix.
my $SKEY = qr/(?:__Secure-)?sessionid_https/;

# The secure key cookie a response sets: its parsed Set-Cookie, or undef.
sub secure_key_of {
	my ($r) = @_;
	my $jar = set_cookies($r);
	my ($name) = grep { /^$SKEY\z/ } sort keys %$jar;
	return defined $name ? $jar->{$name} : undef;
}

# A session started at $uri over plain HTTP: the browser, its uid, token
# and nonce.
sub http_session {
	my ($uri) = @_;
	my $b = browser();
	my $v = session_vars($b->get($uri));
	return ($b, $v->{uid} // '', $b->cookie('sessionid') // '',
		$b->cookie('sessionnonce') // '');
}

# The status and uid a request with exactly these HTTP cookies gets at $uri.
sub with_cookies {
	my ($uri, $token, $nonce, %opts) = @_;
	my $b = browser(%opts);
	return session_vars($b->get($uri, cookies =>
		{ sessionid => $token, sessionnonce => $nonce }, keep => 0));
}

# an HTTP-born session meeting HTTPS is replaced, not given the secure key

my ($b, $uid, $token, $nonce) = http_session('/');
like($uid, qr/^[0-9a-f]{32}\z/, 'https: http-born session has a uid');
ok(!defined secure_key_of($b->last_response()), 'https: no key over http');

my $r = $b->get('/', ssl => 1);
my $v = session_vars($r);
like($r, qr/^HTTP\/1\.1 200 .*hello$/s, 'https: served');
is($v->{status}, 'new', 'https: http-born session replaced (new)');
isnt($v->{uid}, $uid, 'https: new uid');
like($v->{uid} // '', qr/^[0-9a-f]{32}\z/, 'https: the new session has one');
my $c = set_cookies($r);
like($c->{sessionid}{value} // '', qr/^$TOKEN\z/, 'https: token cookie set');
isnt($c->{sessionid}{value} // '', $token, 'https: new token');
my $key = secure_key_of($r);
like($key->{value} // '', qr/^$KEY\z/, 'https: secure key set');
ok(exists $key->{attrs}{secure}, 'https: secure key cookie Secure');

# the new session is bound to the key; the HTTP-born one has ended

my $uid1 = $v->{uid} // '';
$v = session_vars($b->get('/', ssl => 1));
is($v->{status}, 'valid', 'https: new session valid with its key');
is($v->{uid}, $uid1, 'https: new session same uid');

$v = with_cookies('/', $token, $nonce);
is($v->{status}, 'new', 'https: old token over http leads to a new session');
isnt($v->{uid}, $uid, 'https: old uid gone');

# a thief with the sniffed HTTP cookies gets nothing over HTTPS either

($b, $uid, $token, $nonce) = http_session('/');
$v = with_cookies('/', $token, $nonce, ssl => 1);
isnt($v->{status}, 'valid', 'thief: not valid over https');
isnt($v->{uid}, $uid, 'thief: not the http-born uid');
$v = session_vars($b->get('/'));
isnt($v->{status}, 'valid', 'thief: the http-born session is over');
isnt($v->{uid}, $uid, 'thief: its uid is not served again');

# fingerprint: a session created without one is replaced where it is checked

($b, $uid, $token, $nonce) = http_session('/nofp');
is(session_vars($b->get('/nofp'))->{status}, 'valid', 'fingerprint: valid');

$r = $b->get('/');
$v = session_vars($r);
is($v->{status}, 'new', 'fingerprint: unbound session replaced (new)');
isnt($v->{uid}, $uid, 'fingerprint: new uid');
isnt(set_cookies($r)->{sessionid}{value} // $token, $token,
	'fingerprint: new token');
$v = session_vars($b->get('/'));
is($v->{status}, 'valid', 'fingerprint: new session valid');

$v = with_cookies('/nofp', $token, $nonce);
is($v->{status}, 'new', 'fingerprint: old token leads to a new session');
isnt($v->{uid}, $uid, 'fingerprint: old uid gone');

# nonce: a session created without one is replaced where nonces are on

($b, $uid, $token) = http_session('/nononce');
ok(!defined $b->cookie('sessionnonce'), 'nonce: none with nonces off');
is(session_vars($b->get('/nononce'))->{status}, 'valid', 'nonce: valid');

$r = $b->get('/');
$v = session_vars($r);
is($v->{status}, 'new', 'nonce: session without a nonce replaced (new)');
isnt($v->{uid}, $uid, 'nonce: new uid');
isnt(set_cookies($r)->{sessionid}{value} // $token, $token,
	'nonce: new token');
like($b->cookie('sessionnonce') // '', qr/^$KEY\z/, 'nonce: nonce issued');

$v = session_vars(browser()->get('/nononce',
	cookies => { sessionid => $token }, keep => 0));
is($v->{status}, 'new', 'nonce: old token leads to a new session');

# paranoid_secure_cookie_upgrade on: the HTTP-born session gets its key

$t->stop();
write_conf($t, 'paranoid_secure_cookie_upgrade on;');
my $up = eval { $t->run(); 1 };
ok($up, 'upgrade: paranoid_secure_cookie_upgrade on accepted');

SKIP: {
skip 'nginx did not start with paranoid_secure_cookie_upgrade', 5 unless $up;

($b, $uid) = http_session('/');
$r = $b->get('/', ssl => 1);
$v = session_vars($r);
is($v->{status}, 'valid', 'upgrade: valid over https');
is($v->{uid}, $uid, 'upgrade: same uid');
like(secure_key_of($r)->{value} // '', qr/^$KEY\z/, 'upgrade: secure key set');

$v = session_vars($b->get('/', ssl => 1));
is($v->{status}, 'valid', 'upgrade: valid with the key after');

$v = session_vars($b->clone()->get('/', ssl => 1, keep => 0,
	drop => [ grep { /^$SKEY\z/ } keys %{$b->cookies()} ]));
is($v->{violation}, 'secure_key', 'upgrade: then required');

}

###############################################################################
