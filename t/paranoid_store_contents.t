#!/usr/bin/perl

# Tests for paranoid_session module: what memcached holds. Keys are the
# prefix and 64 hex chars (a hash of the token); no key or value holds a
# token, nonce or secure key, in text or raw, nor the fingerprint's values
# in clear; paranoid_session_key_prefix changes the prefix; with a secret
# file the key is not the plain SHA-256 of the token.

###############################################################################

use warnings;
use strict;

use Test::More;
use Digest::SHA qw/ sha256_hex hmac_sha256_hex /;
use MIME::Base64 qw/ decode_base64url /;

BEGIN { use FindBin; chdir($FindBin::Bin); }

# t/lib's Test::Nginx, unless PERL5LIB points at an nginx-tests checkout.
BEGIN { push @INC, 'lib'; }
use Test::Nginx;
use Test::Paranoid;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/http realip http_ssl socket_ssl/)
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

        set_real_ip_from 127.0.0.1;
        real_ip_header X-Real-IP;

        add_header X-Status "[$paranoid_session_status]" always;
        add_header X-Uid "[$paranoid_session_uid]" always;

        location / {
            paranoid_session on;
            paranoid_nonce_timeout 0;
            paranoid_key_timeout 1s;
            paranoid_nonce_window_timeout 10s;
        }

        location /prefixed {
            paranoid_session on;
            paranoid_cookie psid;
            paranoid_session_key_prefix myapp/sess-;
        }

        location /keyed {
            paranoid_session on;
            paranoid_cookie ksid;
            paranoid_session_key_prefix keyed:;
            paranoid_session_secret_file %%TESTDIR%%/secret.key;
        }

        location /keyed_too {
            paranoid_session on;
            paranoid_cookie ksid;
            paranoid_session_key_prefix keyed:;
            paranoid_session_secret_file %%TESTDIR%%/secret.key;
        }

        location /unkeyed {
            paranoid_session on;
            paranoid_cookie ksid;
            paranoid_session_key_prefix keyed:;
        }
    }
}

EOF

$t->write_file('index.html', 'hello');
$t->write_file('prefixed', 'prefixed');
$t->write_file($_, $_) for qw/ keyed keyed_too unkeyed /;
$t->write_file('secret.key', join('', map { chr(97 + $_ % 26) } 1 .. 40));
make_cert($t, 'localhost');

memcached_start($t, 11211);
$t->run();

$t->plan(18);

###############################################################################

my $UA = 'Zebra-Agent/7.3 (unmistakable)';
my $IP = '10.98.76.54';

# Every secret a client was given, from all Set-Cookie headers seen.
my %secrets;
my $rotations = 0;	# each leaves the old token behind as a pointer
sub collect {
	my ($r) = @_;
	$rotations++ if (session_vars($r)->{status} // '') eq 'rotated';
	for my $c (values %{set_cookies($r)}) {
		$secrets{$c->{value}} = 1 if length $c->{value} >= 16;
	}
	return $r;
}

# sessions over http and https, nonces renewed, a token cycled

my @browsers = map { browser(ua => $UA, ip => $IP, ssl => $_ % 2) } 1 .. 4;
for my $b (@browsers) {
	collect($b->get('/')) for 1 .. 3;
}
select undef, undef, undef, 1.1;
my $rotated = 0;
for my $b (@browsers) {
	my $r = collect($b->get('/'));
	$rotated++ if (session_vars($r)->{status} // '') eq 'rotated';
}
is($rotated, 4, 'tokens cycled (old ones kept as pointers)');
my $valid = 0;
for my $b (@browsers) {
	$valid++ if (session_vars(collect($b->get('/')))->{status} // '')
		eq 'valid';
}
is($valid, 4, 'sessions still valid after cycling');

my $pb = browser(ua => $UA, ip => $IP);
collect($pb->get('/prefixed')) for 1 .. 2;
my $kb = browser(ua => $UA, ip => $IP);
collect($kb->get('/keyed')) for 1 .. 2;

my @tokens = grep { /^[A-Za-z0-9_-]{43}\z/ } keys %secrets;
my @keys22 = grep { /^[A-Za-z0-9_-]{22}\z/ } keys %secrets;
cmp_ok(scalar @tokens, '>=', 10, scalar(@tokens) . ' tokens seen');
cmp_ok(scalar @keys22, '>=', 16, scalar(@keys22) . ' nonces and keys seen');

# the keys

my @keys = memcached_keys(11211);
my @plain = grep { /^ps:/ } @keys;
my @prefixed = grep { m!^myapp/sess-! } @keys;
my @keyed = grep { /^keyed:/ } @keys;

# 4 rotations above, more if a slow machine took over a second for the first
# three requests of a browser
is(scalar @plain, 4 + $rotations,
	"default prefix: 4 sessions, $rotations old tokens");
is(join(' ', grep { !/^(ps:|myapp\/sess-|keyed:)[0-9a-f]{64}\z/ } @keys), '',
	'every key is a prefix and 64 hex chars');
is(scalar @prefixed, 1, 'key prefix: one session under it');
is(scalar @keyed, 1, 'secret file: one session');

# no token, nonce or key in any key

my @leaks;
for my $secret (keys %secrets) {
	my $hex = b64url_hex($secret) // '';
	push @leaks, grep { index($_, $secret) >= 0
		|| length $hex && index(lc $_, $hex) >= 0 } @keys;
}
is("@leaks", '', 'no secret in any key');

# the key of a token is exactly prefix + hex(SHA-256(token)), or with a
# secret file prefix + hex(HMAC-SHA-256(secret, token)), so that tools
# outside nginx can find a session from its cookie

my $ptoken = decode_base64url($pb->cookie('psid') // '');
is($prefixed[0], 'myapp/sess-' . sha256_hex($ptoken),
	'key: prefix and SHA-256 of the token');
my $ktoken = decode_base64url($kb->cookie('ksid') // '');
is($keyed[0], 'keyed:' . hmac_sha256_hex($ktoken, $t->read_file('secret.key')),
	'key: prefix and HMAC-SHA-256 with the secret file');

# with a secret file the key depends on it: the same token and prefix
# without the secret lead nowhere (a record found under the unkeyed name
# would be a fingerprint violation, not a new session)

my $kuid = session_vars($kb->last_response)->{uid} // '';
my $v = session_vars($kb->get('/keyed_too'));
is($v->{status}, 'valid', 'secret file: same secret, session found');
is($v->{uid}, $kuid, 'secret file: same secret, same uid');
$v = session_vars($kb->get('/unkeyed', keep => 0));
is($v->{status}, 'new', 'secret file: without it the token is unknown');

# no token, nonce or key in any value, nor the fingerprint in clear

my ($values, @bad) = (0);
for my $key (@keys) {
	my $value = memcached_value(11211, $key);
	next unless defined $value;
	$values++;
	for my $secret (keys %secrets) {
		my $raw = decode_base64url($secret);
		push @bad, "$key: a secret" if index($value, $secret) >= 0
			|| index($value, $raw) >= 0
			|| index(lc $value, b64url_hex($secret)) >= 0;
	}
	push @bad, "$key: the user agent" if index($value, 'Zebra') >= 0;
	push @bad, "$key: the address" if index($value, $IP) >= 0
		|| index($value, pack('C4', split /\./, $IP)) >= 0;
}
is($values, scalar @keys, 'every value read');
is(join(', ', @bad), '', 'no secret or fingerprint value in any value');

# records are small

my $max = 0;
for my $key (@keys) {
	my $len = length(memcached_value(11211, $key) // '');
	$max = $len if $len > $max;
}
cmp_ok($max, '<=', 1024, "records are small ($max bytes at most)");
cmp_ok($max, '>', 0, 'records are not empty');

###############################################################################
